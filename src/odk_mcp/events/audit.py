"""The audit log: who did what to which resource, written inside the same transaction.

`record_audit` is called by every service facade for every write; `AuditLog` answers the
admin-only `GET /v1/audits` query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events.tables import audits
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.pgjson import json_text


async def record_audit(
    conn: AsyncConnection,
    actor: Actor | None,
    action: str,
    target_type: str | None = None,
    target_id: str | int | None = None,
    project_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    actor_id = actor.id if actor is not None and actor.id > 0 else None
    await conn.execute(
        insert(audits).values(
            actor_id=actor_id,
            action=action,
            project_id=project_id,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            details=details or {},
            logged_at=func.now(),
        )
    )


@dataclass(frozen=True)
class AuditRecord:
    """One audit row for `record_audits` (the fields of `record_audit`)."""

    actor_id: int | None
    action: str
    target_type: str | None
    target_id: str | None
    project_id: int | None
    details: dict[str, Any]


_RECORD_MANY = (
    "INSERT INTO events.audits (actor_id, action, project_id, target_type, target_id, details, logged_at)"
    " SELECT a, c, p, t, i, d, now()"
    " FROM jsonb_to_recordset(%s::jsonb) AS u(o int, a int, c text, p int, t text, i text, d jsonb)"
    " ORDER BY o"
)


async def record_audits(pg: psycopg.AsyncConnection[Any], records: Sequence[AuditRecord]) -> None:
    """Many audit rows in one statement, on the driver connection of a group writer's
    transaction (in pipeline mode the statement is only queued)."""
    if records:
        rows = [
            {
                "o": n,
                "a": r.actor_id,
                "c": r.action,
                "p": r.project_id,
                "t": r.target_type,
                "i": r.target_id,
                "d": r.details,
            }
            for n, r in enumerate(records)
        ]
        await pg.execute(_RECORD_MANY, (json_text(rows),))


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor_id: int | None
    action: str
    project_id: int | None
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]
    logged_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actorId": self.actor_id,
            "action": self.action,
            "projectId": self.project_id,
            "acteeType": self.target_type,
            "acteeId": self.target_id,
            "details": self.details,
            "loggedAt": iso(self.logged_at),
        }


class AuditLog:
    """Read side of the audit log (admins only)."""

    def __init__(self, db: Database, authorizer: Authorizer) -> None:
        self._db = db
        self._authorizer = authorizer

    async def query(
        self,
        actor: Actor,
        action: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        self._authorizer.require(actor, "audit.read")
        stmt = select(audits).order_by(audits.c.logged_at.desc(), audits.c.id.desc())
        if action:
            # Central allows a category prefix such as "user" for every user.* action.
            if "." in action:
                stmt = stmt.where(audits.c.action == action)
            else:
                stmt = stmt.where(audits.c.action.startswith(action + ".", autoescape=True))
        if start is not None:
            stmt = stmt.where(audits.c.logged_at >= start)
        if end is not None:
            stmt = stmt.where(audits.c.logged_at <= end)
        stmt = stmt.limit(limit).offset(offset)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [AuditEntry(**dict(row)) for row in rows]


async def audits_for(
    conn: AsyncConnection, target_type: str, target_id: str, limit: int = 1000
) -> list[AuditEntry]:
    """The audit trail of one resource, newest first (services check access before asking)."""
    stmt = (
        select(audits)
        # The type inline (not a parameter), so a partial index on one type always matches.
        .where(
            audits.c.target_type == literal(target_type, literal_execute=True),
            audits.c.target_id == target_id,
        )
        .order_by(audits.c.logged_at.desc(), audits.c.id.desc())
        .limit(limit)
    )
    rows = (await conn.execute(stmt)).mappings().all()
    return [AuditEntry(**dict(row)) for row in rows]
