"""The read model of new submissions, written in the transaction that inserts them.

The submissions service's bulk import (services/submissions/bulk.py) and its group-commit
writer (services/submissions/writer.py) call this with the snapshots of the submissions they
have just inserted: the same `SubmissionSnapshot` the event consumer reads back after a
`submission.received`, so the rows are what the projector (projection.py) and `odk-mcp
rebuild` write — the same `flatten`, the same columns — only inserted instead of upserted,
since the submissions are new (no rows to replace, no concurrent writer can see them before
the commit): with COPY for the importer's large batches, with two statements queued in the
writer's pipeline for its batches (`write_new`). The writer passes the
ids of the `submission.received` events it emits in the same transaction, so the rows carry
them as the consumer would have written them and the consumer finds them current; imported
submissions have no such event and carry event id 0, as a rebuild writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from odk_mcp.kernel.pgjson import json_text
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.domain.flatten import field_index, flatten
from odk_mcp.services.aggregation.projection import repeat_row_values
from odk_mcp.services.forms import Field, FormLookup
from odk_mcp.services.submissions import SubmissionSnapshot

_ROW_COLUMNS = [str(c.name) for c in rows.columns]  # plain str keys: orjson refuses subclasses
_REPEAT_COLUMNS = [str(c.name) for c in repeat_rows.columns]
_INSERT_ROWS = (
    f"INSERT INTO aggregation.rows ({', '.join(_ROW_COLUMNS)})"  # noqa: S608 - the table's columns
    f" SELECT {', '.join(_ROW_COLUMNS)} FROM jsonb_populate_recordset(NULL::aggregation.rows, %s::jsonb)"
)
_INSERT_REPEATS = (
    f"INSERT INTO aggregation.repeat_rows ({', '.join(_REPEAT_COLUMNS)})"  # noqa: S608 - the table's columns
    f" SELECT {', '.join(_REPEAT_COLUMNS)}"
    " FROM jsonb_populate_recordset(NULL::aggregation.repeat_rows, %s::jsonb)"
)


class ReadModelImport:
    """The bulk importer's `ImportProjection` (the instance) and the group writer's
    `WriteProjection` (`write_new`), registered in bootstrap."""

    def __init__(self, lookup: FormLookup) -> None:
        self._lookup = lookup
        self._fields: dict[int, dict[str, Field]] = {}

    async def __call__(
        self, pg: psycopg.AsyncConnection[Any], snapshots: Sequence[SubmissionSnapshot]
    ) -> None:
        """The import's rows, with COPY (event id 0)."""
        flats = []
        for snapshot in snapshots:
            fields = await self._fields_of(snapshot.form_def_id)
            flats.append((snapshot, flatten(snapshot.data, fields, snapshot.instance_id)))
        cursor = pg.cursor()
        async with cursor.copy(f"COPY aggregation.rows ({', '.join(_ROW_COLUMNS)}) FROM STDIN") as copy:
            for snapshot, flat in flats:
                values = {name: getattr(snapshot, name, None) for name in _ROW_COLUMNS}
                values["data"] = json_text(flat.root)
                values["event_id"] = 0
                await copy.write_row([values[name] for name in _ROW_COLUMNS])
        statement = f"COPY aggregation.repeat_rows ({', '.join(_REPEAT_COLUMNS)}) FROM STDIN"
        async with cursor.copy(statement) as copy:
            for snapshot, flat in flats:
                for r in flat.repeats:
                    await copy.write_row(
                        (
                            snapshot.submission_id,
                            snapshot.form_id,
                            snapshot.draft,
                            r.repeat_path,
                            r.key,
                            r.parent_key,
                            r.ordinal,
                            r.seq,
                            json_text(r.data),
                        )
                    )

    async def write_new(
        self,
        pg: psycopg.AsyncConnection[Any],
        snapshots: Sequence[SubmissionSnapshot],
        event_ids: Sequence[int],
    ) -> None:
        """The group writer's rows (a `WriteProjection`): each root row carries its submission's
        `submission.received` event id. Two statements, each with its rows as one JSON
        parameter, only queued (the writer's pipeline sends them with its commit)."""
        if len(event_ids) != len(snapshots):
            raise ValueError("one event id per snapshot")
        roots, repeats = [], []
        for snapshot, event_id in zip(snapshots, event_ids, strict=True):
            flat = flatten(snapshot.data, await self._fields_of(snapshot.form_def_id), snapshot.instance_id)
            values = {name: getattr(snapshot, name, None) for name in _ROW_COLUMNS}
            values["data"] = flat.root
            values["event_id"] = event_id
            roots.append(values)
            repeats += repeat_row_values(snapshot, flat)
        await pg.execute(_INSERT_ROWS, (json_text(roots),))
        if repeats:
            await pg.execute(_INSERT_REPEATS, (json_text(repeats),))

    async def _fields_of(self, def_id: int) -> dict[str, Field]:
        fields = self._fields.get(def_id)
        if fields is None:
            schema = await self._lookup.schema_of(def_id)
            if schema is None:
                raise LookupError(f"form definition {def_id} is unknown")
            fields = self._fields[def_id] = field_index(schema)
        return fields
