"""CSV tables written by PostgreSQL itself: each column of Central's layout becomes a SQL
expression, and `COPY (SELECT …) TO STDOUT (FORMAT csv)` streams the finished CSV bytes.

This is the fast path of the CSV and `.csv.zip` exports: no row is decoded into Python (JSON
parsing and per-cell formatting cost far more than what PostgreSQL's COPY does), the server does the
quoting, and Python only frames the bytes into the zip (the COPY is read by a blocking
connection in a thread, `kernel.copy_out`, at COPY speed). It writes exactly what
`rows.text_cells` + `CsvEncoder` write (a test holds the two to the same bytes): empty values
are NULL (COPY writes an empty unquoted cell for NULL, `""` for an empty string, so empty
strings are turned into NULL), numbers are the JSONB numbers' text, dates UTC with
milliseconds and `Z`. The Python path stays for labelled CSVs and the typed formats.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Integer, Text, bindparam, case, cast, func, literal, null, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel.copy_out import CHUNK_BYTES, copy_out
from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.exports.domain.layout import Column, Kind, Table
from odk_mcp.services.aggregation.exports.domain.rows import EXPORT_STATUS
from odk_mcp.services.aggregation.exports.reading import NameLookup
from odk_mcp.services.aggregation.exports.writers.csv_text import CsvEncoder

Progress = Callable[[int], Awaitable[None]]

_ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


def _blank_is_null(value: Any) -> ColumnElement[Any]:
    return func.nullif(value, "")


def _parts(value: Any) -> ColumnElement[Any]:
    return func.regexp_split_to_array(func.btrim(value), r"\s+", type_=ARRAY(Text))


class _Names:
    """Submitter display names, as a (id, name) relation joined to the rows."""

    def __init__(self, names: dict[int, str]) -> None:
        ids, texts = list(names), list(names.values())
        self.relation = select(
            func.unnest(cast(bindparam("submitter_ids", ids), ARRAY(Integer))).label("id"),
            func.unnest(cast(bindparam("submitter_names", texts), ARRAY(Text))).label("name"),
        ).subquery("names")


def _expression(column: Column, data: Any, names: _Names | None, is_root: bool) -> ColumnElement[Any]:
    kind = column.kind
    if kind in (Kind.FIELD, Kind.GEO, Kind.CHOICE):
        assert column.field is not None
        raw = data.op("->>")(column.field.path)
        if kind is Kind.FIELD:
            return _blank_is_null(raw)
        if kind is Kind.GEO:
            return _blank_is_null(_parts(raw)[column.part + 1])
        chosen = _parts(raw).op("@>")(cast(postgresql.array([literal(column.choice)]), ARRAY(Text)))
        return case((chosen, "1"), else_="0")
    if kind is Kind.SUBMISSION_DATE:
        return func.to_char(func.timezone("UTC", rows.c.created_at), _ISO_UTC)
    if kind is Kind.KEY:
        return rows.c.instance_id if is_root else repeat_rows.c.key
    if kind is Kind.PARENT_KEY:
        return repeat_rows.c.parent_key
    meta: dict[str, ColumnElement[Any]] = {
        "SubmitterID": cast(rows.c.submitter_id, Text),
        "AttachmentsPresent": cast(rows.c.attachments_present, Text),
        "AttachmentsExpected": cast(rows.c.attachments_expected, Text),
        "Status": case(
            *[(rows.c.status == value, literal(text)) for value, text in EXPORT_STATUS.items()], else_=null()
        ),
        "ReviewState": _blank_is_null(rows.c.review_state),
        "DeviceID": _blank_is_null(rows.c.device_id),
        "Edits": cast(rows.c.edits, Text),
        "FormVersion": _blank_is_null(rows.c.form_version),
    }
    if column.meta == "SubmitterName":
        return _blank_is_null(names.relation.c.name) if names is not None else null()
    return meta[column.meta or ""]


def table_select(table: Table, conditions: Sequence[ColumnElement[bool]], names: dict[int, str]) -> Any:
    """The SELECT producing the table's CSV cells, in Central's export order."""
    if table.is_root:
        relation = _Names(names)
        columns = [_expression(c, rows.c.data, relation, True) for c in table.columns]
        return (
            select(*columns)
            .select_from(rows.outerjoin(relation.relation, relation.relation.c.id == rows.c.submitter_id))
            .where(*conditions)
            .order_by(rows.c.created_at.desc(), rows.c.submission_id.desc())
        )
    columns = [_expression(c, repeat_rows.c.data, None, False) for c in table.columns]
    return (
        select(*columns)
        .select_from(repeat_rows.join(rows, rows.c.submission_id == repeat_rows.c.submission_id))
        .where(*conditions, repeat_rows.c.repeat_path == table.repeat_path)
        .order_by(rows.c.created_at.desc(), rows.c.submission_id.desc(), repeat_rows.c.seq)
    )


class CopyCsv:
    """Streams tables of one export as CSV straight from PostgreSQL."""

    def __init__(
        self,
        db: Database,
        conditions: Sequence[ColumnElement[bool]],
        names: NameLookup,
        streams: asyncio.Semaphore,
    ) -> None:
        self._db = db
        # A COPY holds its connection for as long as the client takes to download: at most
        # `streams` of them at once, so downloads never take the whole pool.
        self._streams = streams
        self._conditions = list(conditions)
        self._names = names
        self._known: dict[int, str] | None = None

    async def _submitter_names(self) -> dict[int, str]:
        if self._known is None:
            stmt = (
                select(rows.c.submitter_id)
                .where(*self._conditions, rows.c.submitter_id.is_not(None))
                .group_by(rows.c.submitter_id)
            )
            async with self._db.read() as conn:
                ids = [int(i) for i in (await conn.execute(stmt)).scalars().all()]
            self._known = await self._names.display_names(ids) if ids else {}
        return self._known

    async def chunks(
        self, table: Table, header: Sequence[str], progress: Progress | None = None
    ) -> AsyncIterator[bytes]:
        """The header line, then PostgreSQL's CSV of the rows in pieces of ~256 KB (read in a
        thread: see kernel/copy_out.py); `progress` gets the number of rows of each piece."""
        yield CsvEncoder().encode([list(header)])
        names = await self._submitter_names() if table.is_root else {}
        compiled = table_select(table, self._conditions, names).compile(dialect=_DIALECT)
        statement = f"COPY ({compiled}) TO STDOUT (FORMAT csv)"
        # psycopg binds COPY parameters itself; JSON values (the filter's `data @> {…}`
        # containment tests) need its JSONB wrapper, which SQLAlchemy's processors would add.
        params = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in compiled.params.items()}
        async with self._streams:
            async for piece, count in copy_out(self._db.url, statement, params, CHUNK_BYTES):
                yield piece
                if progress is not None:
                    await progress(count)
