"""Parquet: one table per file with typed columns, written in row groups as rows arrive.

Column types come from the form: integers are int64, decimals and geopoint parts float64,
split select_multiple flags int8, the submission date a UTC timestamp, counts int64, and
everything else (text, dates and times as the client wrote them, choices) a string.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from odk_mcp.services.aggregation.exports.domain.layout import Column, Kind, Table
from odk_mcp.services.aggregation.exports.domain.rows import TypedCell

ROW_GROUP_ROWS = 50_000
_INT_META = frozenset({"SubmitterID", "AttachmentsPresent", "AttachmentsExpected", "Edits"})


def arrow_type(column: Column) -> pa.DataType:
    if column.kind is Kind.FIELD and column.field is not None:
        if column.field.type == "int":
            return pa.int64()
        if column.field.type == "decimal":
            return pa.float64()
        return pa.string()
    if column.kind is Kind.GEO:
        return pa.float64()
    if column.kind is Kind.CHOICE:
        return pa.int8()
    if column.kind is Kind.SUBMISSION_DATE:
        return pa.timestamp("ms", tz="UTC")
    if column.kind is Kind.META and column.meta in _INT_META:
        return pa.int64()
    return pa.string()


def arrow_schema(table: Table, headers: Sequence[str]) -> pa.Schema:
    names: list[str] = []
    seen: set[str] = set()
    for header in headers:
        name, n = header, 1
        while name in seen:  # labels as headers may repeat; Parquet needs distinct names
            n += 1
            name = f"{header} ({n})"
        seen.add(name)
        names.append(name)
    return pa.schema([pa.field(n, arrow_type(c)) for n, c in zip(names, table.columns, strict=True)])


def record_batch(schema: pa.Schema, rows: Sequence[Sequence[TypedCell]]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = []
    for field, values in zip(schema, columns, strict=True):
        if pa.types.is_integer(field.type):
            values = tuple(v if isinstance(v, int) and -(2**63) <= v < 2**63 else None for v in values)
        arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class ParquetWriter:
    def __init__(self, path: Path, table: Table, headers: Sequence[str]) -> None:
        self.schema = arrow_schema(table, headers)
        self._writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")
        self._pending: list[Sequence[TypedCell]] = []

    def write(self, rows: Sequence[Sequence[TypedCell]]) -> None:
        self._pending.extend(rows)
        if len(self._pending) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_batch(record_batch(self.schema, self._pending))
            self._pending = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
