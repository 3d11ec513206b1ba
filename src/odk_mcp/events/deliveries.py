"""The administrators' view of event deliveries: backlog per consumer, dead letters, redrive.

Used by `GET/POST /v1/system/events…`, the `odk-mcp events` command and the `/metrics`
gauges. Counts cover open deliveries only (pending, running, dead): done ones accumulate
with the history, and counting them would read all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events.audit import record_audit
from odk_mcp.events.tables import deliveries, outbox, subscriptions
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database

# The channel the outbox trigger (migration e002) notifies when it creates deliveries.
NOTIFY_CHANNEL = "odk_mcp_deliveries"
OPEN_STATUSES = ("pending", "running", "dead")


@dataclass(frozen=True)
class ConsumerBacklog:
    """Open deliveries of one consumer, and how long the oldest pending one has waited."""

    consumer: str
    counts: dict[str, int]
    oldest_pending_at: datetime | None
    oldest_pending_seconds: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            **self.counts,
            "oldestPendingAt": iso(self.oldest_pending_at) if self.oldest_pending_at else None,
            "oldestPendingSeconds": self.oldest_pending_seconds,
        }


@dataclass(frozen=True)
class DeadDelivery:
    event_id: int
    event: str
    consumer: str
    attempts: int
    last_error: str | None
    event_created_at: datetime
    failed_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "event": self.event,
            "consumer": self.consumer,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "eventCreatedAt": iso(self.event_created_at),
            "failedAt": iso(self.failed_at),
        }


_BACKLOG = text(
    """
    SELECT d.consumer,
           count(*) FILTER (WHERE d.status = 'pending') AS pending,
           count(*) FILTER (WHERE d.status = 'running') AS running,
           count(*) FILTER (WHERE d.status = 'dead') AS dead,
           min(o.created_at) FILTER (WHERE d.status = 'pending') AS oldest_pending_at,
           extract(epoch FROM now() - min(o.created_at) FILTER (WHERE d.status = 'pending'))
               AS oldest_pending_seconds
    FROM events.deliveries AS d JOIN events.outbox AS o ON o.id = d.event_id
    WHERE d.status <> 'done'
    GROUP BY d.consumer
    """
)


async def notify_workers(conn: AsyncConnection) -> None:
    """Wake listening workers when the transaction commits."""
    await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))


class Deliveries:
    """Read and repair the delivery state; every method but `backlog` checks the actor."""

    def __init__(self, db: Database, authorizer: Authorizer) -> None:
        self._db = db
        self._authorizer = authorizer

    async def backlog(self) -> list[ConsumerBacklog]:
        """Every subscribed consumer, and any other with open deliveries, by name (no auth)."""
        async with self._db.read() as conn:
            rows = {row["consumer"]: row for row in (await conn.execute(_BACKLOG)).mappings()}
            subscribed = (await conn.execute(select(subscriptions.c.consumer).distinct())).scalars().all()
        result = []
        for consumer in sorted(set(rows) | set(subscribed)):
            row = rows.get(consumer)
            counts = {status: int(row[status]) if row else 0 for status in OPEN_STATUSES}
            seconds = row["oldest_pending_seconds"] if row else None
            result.append(
                ConsumerBacklog(
                    consumer=consumer,
                    counts=counts,
                    oldest_pending_at=row["oldest_pending_at"] if row else None,
                    oldest_pending_seconds=None if seconds is None else round(float(seconds), 3),
                )
            )
        return result

    async def summary(self, actor: Actor) -> list[ConsumerBacklog]:
        self._authorizer.require(actor, "config.read")
        return await self.backlog()

    async def dead(
        self, actor: Actor, consumer: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DeadDelivery]:
        """Dead deliveries, oldest event first."""
        self._authorizer.require(actor, "config.read")
        stmt = (
            select(
                deliveries.c.event_id,
                outbox.c.event,
                deliveries.c.consumer,
                deliveries.c.attempts,
                deliveries.c.last_error,
                outbox.c.created_at.label("event_created_at"),
                deliveries.c.updated_at.label("failed_at"),
            )
            .join(outbox, outbox.c.id == deliveries.c.event_id)
            .where(deliveries.c.status == "dead")
            .order_by(deliveries.c.event_id, deliveries.c.consumer)
            .limit(limit)
            .offset(offset)
        )
        if consumer is not None:
            stmt = stmt.where(deliveries.c.consumer == consumer)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [DeadDelivery(**dict(row)) for row in rows]

    async def redrive(self, actor: Actor, consumer: str | None = None, dead_only: bool = True) -> int:
        """Dead deliveries back to pending with fresh attempts; unless `dead_only`, retries
        waiting out their backoff become due now too. Returns how many deliveries moved."""
        self._authorizer.require(actor, "config.set")
        revive = (
            update(deliveries)
            .where(deliveries.c.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=func.now(), updated_at=func.now())
        )
        hurry = (
            update(deliveries)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at > func.now())
            .values(next_attempt_at=func.now(), updated_at=func.now())
        )
        if consumer is not None:
            revive = revive.where(deliveries.c.consumer == consumer)
            hurry = hurry.where(deliveries.c.consumer == consumer)
        async with self._db.transaction() as conn:
            moved = (await conn.execute(revive)).rowcount
            if not dead_only:
                moved += (await conn.execute(hurry)).rowcount
            if moved:
                await notify_workers(conn)
            await record_audit(
                conn,
                actor,
                "events.redrive",
                details={"consumer": consumer, "deadOnly": dead_only, "deliveries": moved},
            )
        return moved
