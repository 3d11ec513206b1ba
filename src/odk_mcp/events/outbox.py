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


_EMIT_MANY_WITH_IDS = (
    "INSERT INTO events.outbox (id, event, payload, created_at)"
    " SELECT i, e, p, now() FROM jsonb_to_recordset(%s::jsonb) AS u(o int, i bigint, e text, p jsonb)"
    " ORDER BY o"
)
_RESERVE_IDS = "SELECT nextval(pg_get_serial_sequence('events.outbox', 'id')) FROM generate_series(1, %s)"


async def emit_many(
    pg: psycopg.AsyncConnection[Any],
    events: Sequence[tuple[str, dict[str, Any]]],
    ids: Sequence[int] | None = None,
) -> None:
    """Many events in one statement, on the driver connection of a group writer's transaction
    (same rows, same delivery trigger as `emit`; in pipeline mode the statement is only queued).
    `ids`, one per event, are ids taken with `reserve_event_ids` (rising, in the events' order)."""
    if not events:
        return
    if ids is None:
        rows = [{"o": n, "e": e, "p": p} for n, (e, p) in enumerate(events)]
        await pg.execute(_EMIT_MANY, (json_text(rows),))
        return
    if len(ids) != len(events):
        raise ValueError("one reserved id per event")
    rows = [{"o": n, "i": i, "e": e, "p": p} for n, (i, (e, p)) in enumerate(zip(ids, events, strict=True))]
    await pg.execute(_EMIT_MANY_WITH_IDS, (json_text(rows),))


async def reserve_event_ids(pg: psycopg.AsyncConnection[Any], count: int) -> psycopg.AsyncCursor[Any]:
    """Take `count` event ids now, for events emitted later in the same transaction with
    `emit_many(..., ids=...)`: rows that refer to an event (a read model's event id) can then be
    written in the same round trip as the event. The cursor's rows are the ids (in pipeline
    mode, read them once the pipeline has synced; `sorted` puts them in rising order). An id
    taken and not used is a gap, as a rolled-back insert leaves."""
    return await pg.execute(_RESERVE_IDS, (count,))
