"""The delivery log of a webhook: what was sent, how it went, and manual retries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.webhooks.adapters.tables import NOTIFY_CHANNEL, deliveries
from odk_mcp.services.webhooks.subscriptions import Subscriptions, live_subscription
from odk_mcp.services.webhooks.views import delivery_json

DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed", "cancelled")
RETRIABLE = ("pending", "failed")


@dataclass(frozen=True)
class DeliveryPage:
    status: str | None = None
    limit: int = 100
    offset: int = 0


class DeliveryLog:
    def __init__(self, db: Database, subscriptions: Subscriptions) -> None:
        self._db = db
        self._subscriptions = subscriptions

    async def list_deliveries(
        self, actor: Actor, project_id: int, webhook_id: int, page: DeliveryPage
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the webhook's deliveries, newest first, and how many match."""
        await self._subscriptions.check(actor, "webhook.read", project_id)
        if page.status is not None and page.status not in DELIVERY_STATUSES:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                "Unknown delivery status.",
                {"field": "status", "allowed": list(DELIVERY_STATUSES)},
            )
        conditions = [deliveries.c.subscription_id == webhook_id]
        if page.status is not None:
            conditions.append(deliveries.c.status == page.status)
        listed = [c for c in deliveries.c if c.name != "body"]
        stmt = (
            select(*listed)
            .where(*conditions)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
            .limit(page.limit)
            .offset(page.offset)
        )
        async with self._db.read() as conn:
            await live_subscription(conn, project_id, webhook_id)
            rows = (await conn.execute(stmt)).mappings().all()
            total = (
                await conn.execute(select(func.count()).select_from(deliveries).where(*conditions))
            ).scalar_one()
        return [delivery_json(r) for r in rows], int(total)

    async def retry(self, actor: Actor, project_id: int, webhook_id: int, delivery_id: str) -> dict[str, Any]:
        """Send a failed (or waiting) delivery again now, with a full set of attempts."""
        await self._subscriptions.check(actor, "webhook.update", project_id)
        try:
            key = uuid.UUID(delivery_id)
        except ValueError:
            raise Problem(problems.NOT_FOUND) from None
        async with self._db.transaction() as conn:
            await live_subscription(conn, project_id, webhook_id)
            row = (
                (
                    await conn.execute(
                        select(deliveries.c.status)
                        .where(deliveries.c.id == key, deliveries.c.subscription_id == webhook_id)
                        .with_for_update()
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise Problem(problems.NOT_FOUND)
            if row["status"] not in RETRIABLE:
                raise Problem(
                    problems.DELIVERY_NOT_RETRIABLE,
                    details={"status": row["status"], "retriable": list(RETRIABLE)},
                )
            updated = (
                (
                    await conn.execute(
                        update(deliveries)
                        .where(deliveries.c.id == key)
                        .values(
                            status="pending", attempts=0, next_attempt_at=func.now(), updated_at=func.now()
                        )
                        .returning(*[c for c in deliveries.c if c.name != "body"])
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(
                conn,
                actor,
                "webhook.delivery.retry",
                "webhook",
                webhook_id,
                project_id=project_id,
                details={"deliveryId": str(key), "previousStatus": row["status"]},
            )
            await notify_sender(conn)
        return delivery_json(updated)


async def notify_sender(conn: AsyncConnection) -> None:
    """Wake the senders when this transaction commits."""
    await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
