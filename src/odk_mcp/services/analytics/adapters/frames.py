"""Loading a form's rows from the read model as a Polars frame, in one COPY.

The read facade gives the WHERE conditions selecting a form's submissions (form, draft,
deleted, and the OData `$filter` compiled by the aggregation service). The requested fields
are extracted from `data` inside PostgreSQL (numbers cast there, so a value stored as text by
an older form version becomes null instead of failing the load), and the rows leave the
database through `COPY (SELECT …) TO STDOUT (FORMAT csv)` into pyarrow's CSV reader: no
Python object per row. COPY takes no server-side bind parameters, so psycopg merges the
filter's values into the statement client-side with its own quoting (which knows the
connection's `standard_conforming_strings`); field paths come from the form definition.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg.types.json import Jsonb
from sqlalchemy import literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel.db import Database
from odk_mcp.services.analytics.domain.fields import (
    CREATED_AT,
    DEVICE_ID,
    FORM_VERSION,
    INSTANCE_ID,
    SUBMISSION_ID,
    SUBMITTER,
    VERSION_ID,
    Kind,
    kind_of,
)
from odk_mcp.services.forms import Field

_META: list[tuple[str, str, pa.DataType]] = [
    (SUBMISSION_ID, "submission_id", pa.int64()),
    (CREATED_AT, "(extract(epoch from created_at) * 1000000)::int8", pa.int64()),
    (SUBMITTER, "submitter_id", pa.int64()),
    (DEVICE_ID, "device_id", pa.string()),
    (FORM_VERSION, "form_version", pa.string()),
    (INSTANCE_ID, "instance_id", pa.string()),
    (VERSION_ID, "version_id", pa.int64()),
]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def field_column(field: Field) -> tuple[str, pa.DataType]:
    """The SQL extracting a field from `data`, and its Arrow type."""
    key = _quoted(field.path)
    if kind_of(field) is Kind.NUMERIC:
        sql = f"CASE WHEN jsonb_typeof(data -> {key}) = 'number' THEN (data ->> {key})::float8 END"
        return sql, pa.float64()
    return f"data ->> {key}", pa.string()


Column = tuple[str, str, pa.DataType]  # output name, SQL expression, Arrow type


def meta_columns(names: Sequence[str] | None = None) -> list[Column]:
    """Submission metadata columns (all of them when `names` is None)."""
    return [c for c in _META if names is None or c[0] in names]


def field_columns(fields: Sequence[Field]) -> list[Column]:
    return [(f.path, *field_column(f)) for f in fields]


def answer_text(path: str) -> str:
    """A field's answer as trimmed text, empty as NULL (for grouping in SQL)."""
    return f"NULLIF(btrim(data ->> {_quoted(path)}), '')"


async def load_frame(
    db: Database,
    conditions: Sequence[ColumnElement[bool]],
    fields: Sequence[Field],
    meta: Sequence[str] | None = None,
    ordered: bool = True,
) -> pl.DataFrame:
    """The form's selected rows (oldest first when `ordered`): the metadata columns named in
    `meta` (all when None) plus one column per field."""
    async with db.read() as conn:
        return await load_frame_on(conn, conditions, fields, meta, ordered)


async def load_frame_on(
    conn: AsyncConnection,
    conditions: Sequence[ColumnElement[bool]],
    fields: Sequence[Field],
    meta: Sequence[str] | None = None,
    ordered: bool = True,
) -> pl.DataFrame:
    """`load_frame` on a given connection (inside its transaction, e.g. an event delivery's)."""
    return await copy_query(conn, meta_columns(meta) + field_columns(fields), conditions, ordered=ordered)


async def count_groups(
    db: Database, conditions: Sequence[ColumnElement[bool]], columns: Sequence[Column]
) -> pl.DataFrame:
    """`SELECT columns…, count(*) AS n … GROUP BY columns`: aggregation done by PostgreSQL."""
    async with db.read() as conn:
        return await copy_query(
            conn, [*columns, ("n", "count(*)", pa.int64())], conditions, group_by=len(columns)
        )


async def copy_query(
    conn: AsyncConnection,
    columns: Sequence[Column],
    conditions: Sequence[ColumnElement[bool]],
    ordered: bool = False,
    group_by: int = 0,
) -> pl.DataFrame:
    names = [c[0] for c in columns]
    types = [c[2] for c in columns]
    aliases = [f"c{i}" for i in range(len(columns))]
    stmt: Any = select(*[literal_column(c[1]).label(a) for c, a in zip(columns, aliases, strict=True)]).where(
        *conditions
    )
    if group_by:
        stmt = stmt.group_by(*[literal_column(str(i + 1)) for i in range(group_by)])
    if ordered:
        stmt = stmt.order_by(literal_column("created_at"), literal_column("submission_id"))
    buffer = io.BytesIO()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = {name: _adapted(value) for name, value in compiled.construct_params().items()}
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY ({compiled.string}) TO STDOUT (FORMAT csv)", params) as copy,
    ):
        async for chunk in copy:
            buffer.write(chunk)
    if buffer.tell() == 0:
        return pl.DataFrame(schema=_polars_schema(names, types))
    buffer.seek(0)
    table = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=aliases),
        convert_options=pacsv.ConvertOptions(
            column_types=dict(zip(aliases, types, strict=True)),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    frame = pl.from_arrow(table.rename_columns(names))
    assert isinstance(frame, pl.DataFrame)
    if CREATED_AT in names:
        frame = frame.with_columns(pl.col(CREATED_AT).cast(pl.Datetime("us", "UTC")))
    return frame


def _adapted(value: Any) -> Any:
    """A bind value as psycopg sends it: JSON documents (the `@>` containment a `$filter`
    compiles to) wrapped as jsonb, everything else adapted by psycopg itself."""
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


def _polars_schema(names: list[str], types: list[pa.DataType]) -> dict[str, pl.DataType]:
    mapping: dict[str, pl.DataType] = {}
    for name, kind in zip(names, types, strict=True):
        if name == CREATED_AT:
            mapping[name] = pl.Datetime("us", "UTC")
        elif kind == pa.int64():
            mapping[name] = pl.Int64()
        elif kind == pa.date32():
            mapping[name] = pl.Date()
        elif kind == pa.float64():
            mapping[name] = pl.Float64()
        else:
            mapping[name] = pl.String()
    return mapping
