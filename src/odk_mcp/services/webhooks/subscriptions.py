"""Managing a project's webhook subscriptions: create, list, read, change, delete.

The secret is sealed (encrypted with the server's key) so that the sender can sign with
it; it is shown once, in the answer to the create request, and never listed or logged.
Deleting a subscription cancels its pending deliveries; its delivery log is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import record_audit
from odk_mcp.infra.sealing import Sealer
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.webhooks.adapters.tables import deliveries, subscriptions
from odk_mcp.services.webhooks.domain import subscription as rules
from odk_mcp.services.webhooks.domain.targets import check_url
from odk_mcp.services.webhooks.ports import ProjectCatalogue
from odk_mcp.services.webhooks.views import subscription_json

MAX_SUBSCRIPTIONS_PER_PROJECT = 100


@dataclass(frozen=True)
class NewWebhook:
    url: str
    events: list[str]
    xml_form_ids: list[str] | None = None
    fields: list[str] | None = None
    secret: str | None = None
    active: bool = True


@dataclass(frozen=True)
class WebhookChanges:
    """A PATCH: only the attributes given (`given`) change."""

    given: frozenset[str]
    url: str | None = None
    events: list[str] | None = None
    xml_form_ids: list[str] | None = None
    fields: list[str] | None = None
    secret: str | None = None
    active: bool | None = None


class Subscriptions:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        projects: ProjectCatalogue,
        sealer: Sealer,
        events: frozenset[str],
        allow_private: bool,
    ) -> None:
        self._db = db
        self._authz = authorizer
        self._projects = projects
        self._sealer = sealer
        self._events = events
        self._allow_private = allow_private

    async def check(self, actor: Actor, verb: str, project_id: int) -> None:
        """The verb on the project (403.1), then the project's existence (404.1)."""
        self._authz.require(actor, verb, project_id)
        if not await self._projects.project_exists(project_id):
            raise Problem(problems.NOT_FOUND)

    async def list_webhooks(self, actor: Actor, project_id: int) -> list[dict[str, Any]]:
        await self.check(actor, "webhook.list", project_id)
        stmt = (
            select(subscriptions)
            .where(subscriptions.c.project_id == project_id, subscriptions.c.deleted_at.is_(None))
            .order_by(subscriptions.c.id)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [subscription_json(r) for r in rows]

    async def get(self, actor: Actor, project_id: int, webhook_id: int) -> dict[str, Any]:
        await self.check(actor, "webhook.read", project_id)
        async with self._db.read() as conn:
            return subscription_json(await live_subscription(conn, project_id, webhook_id))

    async def create(self, actor: Actor, project_id: int, new: NewWebhook) -> dict[str, Any]:
        """The new subscription, with its secret: the only time the secret is shown."""
        await self.check(actor, "webhook.create", project_id)
        target = check_url(new.url, self._allow_private)
        events = rules.check_events(new.events, self._events)
        form_ids = rules.check_form_ids(new.xml_form_ids)
        fields = rules.check_fields(new.fields)
        secret = rules.check_secret(new.secret)
        async with self._db.transaction() as conn:
            count = (
                await conn.execute(
                    select(func.count())
                    .select_from(subscriptions)
                    .where(subscriptions.c.project_id == project_id, subscriptions.c.deleted_at.is_(None))
                )
            ).scalar_one()
            if count >= MAX_SUBSCRIPTIONS_PER_PROJECT:
                raise Problem(
                    problems.UNEXPECTED_VALUE,
                    f"A project can have at most {MAX_SUBSCRIPTIONS_PER_PROJECT} webhooks.",
                    {"limit": MAX_SUBSCRIPTIONS_PER_PROJECT},
                )
            row = (
                (
                    await conn.execute(
                        subscriptions.insert()
                        .values(
                            project_id=project_id,
                            url=target.url,
                            origin=target.origin,
                            events=events,
                            xml_form_ids=form_ids,
                            fields=fields,
                            secret_sealed=self._sealer.seal(secret),
                            active=new.active,
                            created_by=actor.id if actor.id > 0 else None,
                            created_at=func.now(),
                        )
                        .returning(subscriptions)
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(
                conn,
                actor,
                "webhook.create",
                "webhook",
                row["id"],
                project_id=project_id,
                details={"origin": target.origin, "events": events},
            )
        return {**subscription_json(row), "secret": secret}

    async def update(
        self, actor: Actor, project_id: int, webhook_id: int, changes: WebhookChanges
    ) -> dict[str, Any]:
        await self.check(actor, "webhook.update", project_id)
        values = self._changed_values(changes)
        async with self._db.transaction() as conn:
            await live_subscription(conn, project_id, webhook_id, lock=True)
            row = (
                (
                    await conn.execute(
                        update(subscriptions)
                        .where(subscriptions.c.id == webhook_id)
                        .values(**values, updated_at=func.now())
                        .returning(subscriptions)
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(
                conn,
                actor,
                "webhook.update",
                "webhook",
                webhook_id,
                project_id=project_id,
                # Which attributes changed, never the secret's value.
                details={"changed": sorted(changes.given)},
            )
        return subscription_json(row)

    def _changed_values(self, changes: WebhookChanges) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in changes.given:
            if name != "xmlFormIds" and name != "fields" and getattr(changes, _ATTRIBUTES[name]) is None:
                raise Problem(problems.UNEXPECTED_VALUE, f"{name} cannot be null.", {"field": name})
        if "url" in changes.given:
            assert changes.url is not None
            target = check_url(changes.url, self._allow_private)
            values.update(url=target.url, origin=target.origin)
        if "events" in changes.given:
            assert changes.events is not None
            values["events"] = rules.check_events(changes.events, self._events)
        if "xmlFormIds" in changes.given:
            values["xml_form_ids"] = rules.check_form_ids(changes.xml_form_ids)
        if "fields" in changes.given:
            values["fields"] = rules.check_fields(changes.fields)
        if "secret" in changes.given:
            values["secret_sealed"] = self._sealer.seal(rules.check_secret(changes.secret))
        if "active" in changes.given:
            values["active"] = changes.active
        return values

    async def delete(self, actor: Actor, project_id: int, webhook_id: int) -> None:
        await self.check(actor, "webhook.delete", project_id)
        async with self._db.transaction() as conn:
            await live_subscription(conn, project_id, webhook_id, lock=True)
            await conn.execute(
                update(subscriptions).where(subscriptions.c.id == webhook_id).values(deleted_at=func.now())
            )
            cancelled = await conn.execute(
                update(deliveries)
                .where(deliveries.c.subscription_id == webhook_id, deliveries.c.status == "pending")
                .values(
                    status="cancelled",
                    last_error="The webhook was deleted.",
                    updated_at=func.now(),
                )
            )
            await record_audit(
                conn,
                actor,
                "webhook.delete",
                "webhook",
                webhook_id,
                project_id=project_id,
                details={"cancelledDeliveries": cancelled.rowcount},
            )


_ATTRIBUTES = {
    "url": "url",
    "events": "events",
    "xmlFormIds": "xml_form_ids",
    "fields": "fields",
    "secret": "secret",
    "active": "active",
}
WEBHOOK_ATTRIBUTES = frozenset(_ATTRIBUTES)


async def live_subscription(
    conn: AsyncConnection, project_id: int, webhook_id: int, *, lock: bool = False
) -> RowMapping:
    """A subscription of the project that is not deleted, or 404.1."""
    stmt = select(subscriptions).where(
        subscriptions.c.id == webhook_id,
        subscriptions.c.project_id == project_id,
        subscriptions.c.deleted_at.is_(None),
    )
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise Problem(problems.NOT_FOUND)
    return row
