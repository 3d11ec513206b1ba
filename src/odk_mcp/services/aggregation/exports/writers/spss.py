"""SPSS `.sav`: a real system file written by pyreadstat (ReadStat), with variable labels from
the form's question labels and value labels from its choice lists.

SPSS variable names are stricter than Central's headers (letters, digits and `_.@#$`, a
letter first, at most 64 bytes, unique ignoring case), so each column gets a derived name and
keeps its Central header as part of its label. pyreadstat writes from a whole DataFrame, so
the rows are collected as Arrow arrays (compact, columnar) and the row count is capped by the
caller (setting `export_sav_max_rows`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyreadstat

from odk_mcp.services.aggregation.exports.domain.layout import Column, Kind, Table
from odk_mcp.services.aggregation.exports.domain.rows import Labeller, TypedCell
from odk_mcp.services.aggregation.exports.writers.parquet import arrow_type, record_batch

MAX_NAME_BYTES = 64
_RESERVED = frozenset({"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"})
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.@#$]")


def spss_names(headers: Sequence[str]) -> list[str]:
    """Valid, distinct SPSS variable names for the headers, in order."""
    out: list[str] = []
    taken: set[str] = set()
    for header in headers:
        base = _NOT_ALLOWED.sub("_", header.replace("-", "_").replace("/", "_")).rstrip(".") or "v"
        if not base[0].isalpha():
            base = "v" + base
        if base.upper() in _RESERVED:
            base += "_"
        base = base[:MAX_NAME_BYTES]
        name, n = base, 1
        while name.upper() in taken:
            n += 1
            suffix = f"_{n}"
            name = base[: MAX_NAME_BYTES - len(suffix)] + suffix
        taken.add(name.upper())
        out.append(name)
    return out


def _variable_label(column: Column, labeller: Labeller) -> str:
    if column.field is None:
        return column.header
    question = labeller.label(column.field.labels, "")
    if column.kind is Kind.CHOICE and column.choice is not None:
        return f"{question or column.field.name}: {labeller.choice(column.field, column.choice)}"
    return f"{question} ({column.header})" if question else column.header


def _value_labels(column: Column, labeller: Labeller) -> dict[int | float | str, str] | None:
    if column.kind is Kind.CHOICE:
        return {0: "Not selected", 1: "Selected"}
    field = column.field
    if column.kind is Kind.FIELD and field is not None and field.choices and not field.select_multiple:
        return {c.value: labeller.label(c.labels, c.value) for c in field.choices}
    return None


class SavWriter:
    def __init__(self, path: Path, table: Table, labeller: Labeller, file_label: str = "") -> None:
        self._path = path
        self._table = table
        self._labeller = labeller
        self._file_label = file_label[:64]
        self.names = spss_names(table.headers)
        self._schema = pa.schema(
            [pa.field(n, arrow_type(c)) for n, c in zip(self.names, table.columns, strict=True)]
        )
        self._batches: list[pa.RecordBatch] = []

    def write(self, rows: Sequence[Sequence[TypedCell]]) -> None:
        if rows:
            self._batches.append(record_batch(self._schema, rows))

    def close(self) -> None:
        frame = pl.from_arrow(pa.Table.from_batches(self._batches, schema=self._schema))
        assert isinstance(frame, pl.DataFrame)
        self._batches = []
        # SPSS has no time zones: the submission date is written as UTC wall time.
        frame = frame.with_columns(
            [
                pl.col(n).dt.replace_time_zone(None)
                for n, t in frame.schema.items()
                if isinstance(t, pl.Datetime)
            ]
        )
        columns = self._table.columns
        labels: dict[str, str | None] = {
            n: _variable_label(c, self._labeller) for n, c in zip(self.names, columns, strict=True)
        }
        # String variables carry string-keyed value labels (pyreadstat's hints say numbers only).
        value_labels: dict[str, Any] = {}
        for name, column in zip(self.names, columns, strict=True):
            found = _value_labels(column, self._labeller)
            if found:
                value_labels[name] = found
        measure = {
            n: (
                "nominal" if c.kind is Kind.CHOICE or (c.field is not None and c.field.choices) else "unknown"
            )
            for n, c in zip(self.names, columns, strict=True)
        }
        pyreadstat.write_sav(
            frame,
            str(self._path),
            file_label=self._file_label,
            column_labels=labels,
            variable_value_labels=value_labels,
            variable_measure={n: m for n, m in measure.items() if m != "unknown"},
        )
