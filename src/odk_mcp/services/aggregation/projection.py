"""Keeping the read model up to date: the event consumer and the rebuild share one writer.

Every application re-reads the submission's CURRENT state (through the submissions service's
snapshot port, on the caller's connection) and replaces its rows as a whole, so applying an
event twice, late or out of order converges on the same rows. Writers of one submission are
serialised by a transaction-scoped advisory lock taken BEFORE the read: whoever writes last
also read last, so a slow writer can never put back an older state. An event no newer than the
one last applied is skipped (that application read the state after this event, or a newer one).
Several events are applied together with a few set-based statements (`apply_many`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import Consumer, Event
from odk_mcp.kernel import problems
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.pgjson import json_text
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.domain.flatten import Flattened, field_index, flatten
from odk_mcp.services.forms import Field, FormLookup
from odk_mcp.services.submissions import (
    SubmissionSnapshot,
    count_submissions,
    read_snapshots,
    submission_ids,
)

CONSUMER_NAME = "aggregation.read_model"
EVENTS = frozenset(
    {
        "submission.received",
        "submission.edited",
        "submission.reviewed",
        "submission.deleted",
        "submission.restored",
        "submission.attachments.updated",
    }
)
# Advisory lock class of read-model writers ("AGGR"); the object id is the submission id.
LOCK_CLASS = 0x41474752
_LOCK = text("SELECT pg_advisory_xact_lock(:cls, CAST(:key AS integer))")
_LOCK_MANY = text(
    "SELECT pg_advisory_xact_lock(:cls, CAST(k AS integer))"
    " FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k"
)
_ROW_COLUMNS = [str(c.name) for c in rows.columns]  # plain str keys: orjson refuses subclasses


def _lock_key(submission_id: int) -> int:
    return submission_id % 2_147_483_647


@dataclass(frozen=True)
class RebuildProgress:
    done: int
    total: int


class Projector:
    def __init__(self, db: Database, lookup: FormLookup) -> None:
        self._db = db
        self._lookup = lookup

    def consumer(self) -> Consumer:
        return Consumer(CONSUMER_NAME, EVENTS, self.handle, self.handle_batch)

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        await self.apply(conn, _submission_id(event), event.id)

    async def handle_batch(self, conn: AsyncConnection, events: Sequence[Event]) -> None:
        """`handle` for several events: each submission once, for the latest of its events."""
        latest: dict[int, int] = {}
        for event in events:
            submission_id = _submission_id(event)
            latest[submission_id] = max(event.id, latest.get(submission_id, event.id))
        await self.apply_many(conn, latest)

    async def apply(self, conn: AsyncConnection, submission_id: int, event_id: int) -> None:
        """Bring one submission's rows to its current state (event `event_id` triggered it)."""
        await self.apply_many(conn, {submission_id: event_id})

    async def apply_many(self, conn: AsyncConnection, events: dict[int, int]) -> None:
        """`apply` for several submissions (submission id -> the event that triggered it), with
        a few statements for all of them.

        Rows already written for that event or a later one are current (that application read
        the submission after the event was committed) and are left alone: the read model's and
        the quality checks' consumers both bring a submission current, and the second one
        finds nothing to do.
        """
        if not events:
            return
        ids = sorted(events)
        if len(ids) == 1:
            await conn.execute(_LOCK, {"cls": LOCK_CLASS, "key": _lock_key(ids[0])})
        else:
            await conn.execute(_LOCK_MANY, {"cls": LOCK_CLASS, "keys": [_lock_key(i) for i in ids]})
        stored = {
            row.submission_id: row
            for row in await conn.execute(
                select(rows.c.submission_id, rows.c.event_id, rows.c.version_id).where(
                    rows.c.submission_id.in_(ids)
                )
            )
        }
        stale = [i for i in ids if i not in stored or stored[i].event_id < events[i]]
        if not stale:
            return
        snapshots = await read_snapshots(conn, stale)
        gone = sorted(set(stale) - {s.submission_id for s in snapshots})
        if gone:
            await conn.execute(delete(repeat_rows).where(repeat_rows.c.submission_id.in_(gone)))
            await conn.execute(delete(rows).where(rows.c.submission_id.in_(gone)))
        by_def: dict[tuple[int, bool], list[SubmissionSnapshot]] = {}
        for snapshot in snapshots:
            old = stored.get(snapshot.submission_id)
            same_version = old is not None and old.version_id == snapshot.version_id
            by_def.setdefault((snapshot.form_def_id, same_version), []).append(snapshot)
        for (def_id, same_version), batch in by_def.items():
            fields = await self._fields(def_id)
            event_ids = [events[s.submission_id] for s in batch]
            await _write(conn, batch, fields, event_ids, replace_repeats=not same_version)

    async def rebuild(
        self,
        form_ids: Sequence[int] | None = None,
        batch_size: int = 500,
        progress: Callable[[RebuildProgress], Awaitable[None] | None] | None = None,
    ) -> int:
        """Rewrite the rows of every stored submission (of those forms), batch by batch, with
        exactly what the event path writes; answers how many submissions were rebuilt."""
        async with self._db.read() as conn:
            total = await count_submissions(conn, form_ids)
        done = 0
        after = 0
        while True:
            async with self._db.transaction() as conn:
                ids = await submission_ids(conn, after, batch_size, form_ids)
                if not ids:
                    break
                await conn.execute(_LOCK_MANY, {"cls": LOCK_CLASS, "keys": [_lock_key(i) for i in ids]})
                snapshots = await read_snapshots(conn, ids)
                fields_by_def = {s.form_def_id: await self._fields(s.form_def_id) for s in snapshots}
                for def_id, fields in fields_by_def.items():
                    batch = [s for s in snapshots if s.form_def_id == def_id]
                    await _write(conn, batch, fields, [0] * len(batch), replace_repeats=True)
            after = ids[-1]
            done += len(ids)
            if progress is not None:
                result = progress(RebuildProgress(done, max(total, done)))
                if result is not None:
                    await result
        return done

    async def form_ids(self, forms: Sequence[tuple[int, str]]) -> list[int]:
        """The ids of live forms named `(project id, xmlFormId)`; 404.1 names an unknown one."""
        found = []
        for project_id, xml_form_id in forms:
            form_id = await self._lookup.live_form_id(project_id, xml_form_id)
            if form_id is None:
                raise Problem(
                    problems.NOT_FOUND,
                    f"No form {xml_form_id} in project {project_id}.",
                    {"projectId": project_id, "xmlFormId": xml_form_id},
                )
            found.append(form_id)
        return found

    async def _fields(self, def_id: int) -> dict[str, Field]:
        schema = await self._lookup.schema_of(def_id)
        if schema is None:
            raise LookupError(f"form definition {def_id} is unknown")
        return field_index(schema)


def _submission_id(event: Event) -> int:
    submission_id = event.payload.get("submissionId")
    if not isinstance(submission_id, int):
        raise ValueError(f"event {event.id} ({event.name}) has no integer submissionId")
    return submission_id


def _upsert() -> Any:
    # The batch's root rows arrive as one JSON array (one parameter, dumped once): a multi-row
    # executemany through SQLAlchemy cost about a millisecond of Python per submission.
    columns = ", ".join(_ROW_COLUMNS)
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}" for name in _ROW_COLUMNS if name not in ("submission_id", "event_id")
    )
    return text(
        f"INSERT INTO aggregation.rows ({columns})"  # noqa: S608 - column names from the table
        f" SELECT {columns} FROM jsonb_populate_recordset(NULL::aggregation.rows, CAST(:rows AS jsonb))"
        f" ON CONFLICT (submission_id) DO UPDATE SET {updates},"
        " event_id = greatest(aggregation.rows.event_id, EXCLUDED.event_id)"
    )


_UPSERT = _upsert()
_REPEAT_COLUMNS = ", ".join(c.name for c in repeat_rows.columns)
_INSERT_REPEATS = text(
    f"INSERT INTO aggregation.repeat_rows ({_REPEAT_COLUMNS})"  # noqa: S608 - column names from the table
    f" SELECT {_REPEAT_COLUMNS}"
    " FROM jsonb_populate_recordset(NULL::aggregation.repeat_rows, CAST(:rows AS jsonb))"
)
# Snapshots flattened between two turns of the event loop (requests wait at most that long).
_FLATTEN_CHUNK = 32


def repeat_row_values(snapshot: SubmissionSnapshot, flat: Flattened) -> list[dict[str, Any]]:
    """The submission's `aggregation.repeat_rows` rows, as `jsonb_populate_recordset` reads them."""
    return [
        {
            "submission_id": snapshot.submission_id,
            "form_id": snapshot.form_id,
            "draft": snapshot.draft,
            "repeat_path": r.repeat_path,
            "key": r.key,
            "parent_key": r.parent_key,
            "ordinal": r.ordinal,
            "seq": r.seq,
            "data": r.data,
        }
        for r in flat.repeats
    ]


def _row_values(snapshot: SubmissionSnapshot, root: dict[str, Any], event_id: int) -> dict[str, Any]:
    values = {name: getattr(snapshot, name) for name in _ROW_COLUMNS if hasattr(snapshot, name)}
    values["data"] = root
    values["event_id"] = event_id
    return values


async def _write(
    conn: AsyncConnection,
    snapshots: Sequence[SubmissionSnapshot],
    fields: dict[str, Field],
    event_ids: Sequence[int],
    *,
    replace_repeats: bool,
) -> None:
    """Upsert the root rows (each with its event id) and, when asked, replace the repeat rows
    of these submissions."""
    flats = []
    for start in range(0, len(snapshots), _FLATTEN_CHUNK):
        if start:
            await asyncio.sleep(0)  # let waiting requests run between chunks
        flats += [
            (s, flatten(s.data, fields, s.instance_id)) for s in snapshots[start : start + _FLATTEN_CHUNK]
        ]
    await conn.execute(
        _UPSERT,
        {
            "rows": json_text(
                [_row_values(s, flat.root, e) for (s, flat), e in zip(flats, event_ids, strict=True)]
            )
        },
    )
    if not replace_repeats:
        return
    ids = [s.submission_id for s in snapshots]
    await conn.execute(delete(repeat_rows).where(repeat_rows.c.submission_id.in_(ids)))
    repeat_values = [row for s, flat in flats for row in repeat_row_values(s, flat)]
    if repeat_values:
        await conn.execute(_INSERT_REPEATS, {"rows": json_text(repeat_values)})
