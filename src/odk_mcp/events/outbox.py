"""The outbox: domain events written in the same transaction as the change they describe.

Consumers (workers) read it after commit, so an event exists if and only if its change
was committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events.tables import outbox
from odk_mcp.kernel.pgjson import json_text

_EMIT_MANY = (
    "INSERT INTO events.outbox (event, payload, created_at)"
    " SELECT e, p, now() FROM jsonb_to_recordset(%s::jsonb) AS u(o int, e text, p jsonb)"
    " ORDER BY o"
)


async def emit(conn: AsyncConnection, event: str, payload: dict[str, Any]) -> None:
    await conn.execute(insert(outbox).values(event=event, payload=payload, created_at=func.now()))


async def emit_many(
    pg: psycopg.AsyncConnection[Any], events: Sequence[tuple[str, dict[str, Any]]], *, ids: bool = False
) -> psycopg.AsyncCursor[Any] | None:
    """Many events in one statement, on the driver connection of a group writer's transaction
    (same rows, same delivery trigger as `emit`; in pipeline mode the statement is only queued).

    With `ids`, the cursor whose rows are the new events' ids in the order of `events` (read it
    once the pipeline has synced): the rows are inserted in that order, each taking the next id.
    """
    if not events:
        return None
    rows = [{"o": n, "e": e, "p": p} for n, (e, p) in enumerate(events)]
    return await pg.execute(_EMIT_MANY + (" RETURNING id" if ids else ""), (json_text(rows),))
