"""The read model of new submissions, written in the transaction that inserts them.

The submissions service's bulk import (services/submissions/bulk.py) and its group-commit
writer (services/submissions/writer.py) call this with the snapshots of the submissions they
have just inserted: the same `SubmissionSnapshot` the event consumer reads back after a
`submission.received`, so the rows are what the projector (projection.py) and `odk-mcp
rebuild` write — the same `flatten`, the same columns — only with `COPY` instead of per-row
upserts, since the submissions are new (no rows to replace, no concurrent writer can see them
before the commit). The writer passes the ids of the `submission.received` events it emits in
the same transaction, so the rows carry them as the consumer would have written them and the
consumer finds them current; imported submissions have no such event and carry event id 0,
as a rebuild writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from odk_mcp.kernel.pgjson import json_text
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.domain.flatten import field_index, flatten
from odk_mcp.services.forms import Field, FormLookup
from odk_mcp.services.submissions import SubmissionSnapshot

_ROW_COLUMNS = [c.name for c in rows.columns]
_REPEAT_COLUMNS = [c.name for c in repeat_rows.columns]


class ReadModelImport:
    """An `ImportProjection` and a `WriteProjection` (registered with the submissions importer
    and group writer in bootstrap)."""

    def __init__(self, lookup: FormLookup) -> None:
        self._lookup = lookup
        self._fields: dict[int, dict[str, Field]] = {}

    async def __call__(
        self,
        pg: psycopg.AsyncConnection[Any],
        snapshots: Sequence[SubmissionSnapshot],
        event_ids: Sequence[int] | None = None,
    ) -> None:
        if event_ids is not None and len(event_ids) != len(snapshots):
            raise ValueError("one event id per snapshot")
        flats = []
        for snapshot in snapshots:
            fields = await self._fields_of(snapshot.form_def_id)
            flats.append((snapshot, flatten(snapshot.data, fields, snapshot.instance_id)))
        cursor = pg.cursor()
        async with cursor.copy(f"COPY aggregation.rows ({', '.join(_ROW_COLUMNS)}) FROM STDIN") as copy:
            for n, (snapshot, flat) in enumerate(flats):
                values = {name: getattr(snapshot, name, None) for name in _ROW_COLUMNS}
                values["data"] = json_text(flat.root)
                values["event_id"] = event_ids[n] if event_ids is not None else 0
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

    async def _fields_of(self, def_id: int) -> dict[str, Field]:
        fields = self._fields.get(def_id)
        if fields is None:
            schema = await self._lookup.schema_of(def_id)
            if schema is None:
                raise LookupError(f"form definition {def_id} is unknown")
            fields = self._fields[def_id] = field_index(schema)
        return fields
