"""Rows as exports receive them from the read model, and how a row becomes cells.

`RootRow` and `RepeatRow` mirror `aggregation.rows` and `aggregation.repeat_rows` (see
READMODEL.md): `data` maps absolute field paths to the typed values the submissions service
stored (numbers as numbers, everything else as text, select_multiple as space-separated
values, geopoint as "lat lon alt acc"). Two renderings exist: `text_cells` gives exactly what
Central writes to its CSVs; `typed_cells` keeps numbers as numbers for the typed formats
(XLSX, Parquet, SPSS), and can swap choice names for labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from odk_mcp.services.aggregation.exports.domain.layout import NUMERIC_TYPES, Column, Kind, Table
from odk_mcp.services.forms import Field

Cell = str | int | float | None
TypedCell = str | int | float | datetime | None

# An encrypted submission's status (the read model holds OData's values) as Central's exports
# write it in the `Status` column.
EXPORT_STATUS = {"notDecrypted": "not decrypted", "missingEncryptedFormData": "missing encrypted form data"}


@dataclass(frozen=True, slots=True)
class RootRow:
    submission_id: int
    instance_id: str
    created_at: datetime
    data: Mapping[str, Any]
    submitter_id: int | None = None
    submitter_name: str | None = None
    attachments_present: int = 0
    attachments_expected: int = 0
    review_state: str | None = None
    device_id: str | None = None
    edits: int = 0
    form_version: str = ""
    status: str | None = None

    def meta(self, name: str) -> Cell:
        return {
            "SubmitterID": self.submitter_id,
            "SubmitterName": self.submitter_name,
            "AttachmentsPresent": self.attachments_present,
            "AttachmentsExpected": self.attachments_expected,
            "Status": EXPORT_STATUS.get(self.status) if self.status is not None else None,
            "ReviewState": self.review_state,
            "DeviceID": self.device_id,
            "Edits": self.edits,
            "FormVersion": self.form_version,
        }[name]


@dataclass(frozen=True, slots=True)
class RepeatRow:
    submission_id: int
    repeat_path: str
    key: str
    parent_key: str
    data: Mapping[str, Any] = field(default_factory=dict)


Row = RootRow | RepeatRow


def submission_date(moment: datetime) -> str:
    """JavaScript's toISOString: UTC, milliseconds, `Z` (Central's SubmissionDate)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def number_text(value: float) -> str:
    """A decimal as positional text (never `1e-05`), as the XML it came from would write it."""
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def geo_part(value: Any, part: int) -> str | None:
    if value is None:
        return None
    pieces = str(value).split()
    return pieces[part] if part < len(pieces) else None


def _chosen(value: Any, choice: str | None) -> int:
    return 1 if value is not None and choice in str(value).split() else 0


def _own(row: Row, column: Column) -> Any:
    assert column.field is not None
    return row.data.get(column.field.path)


def text_cells(table: Table, row: Row) -> list[Cell]:
    """The row as Central writes it: text, except the numeric metadata columns."""
    out: list[Cell] = []
    for column in table.columns:
        kind = column.kind
        if kind is Kind.FIELD:
            out.append(_text(_own(row, column)))
        elif kind is Kind.GEO:
            out.append(geo_part(_own(row, column), column.part))
        elif kind is Kind.CHOICE:
            out.append(_chosen(_own(row, column), column.choice))
        else:
            out.append(_meta_cell(kind, column, row))
    return out


def _meta_cell(kind: Kind, column: Column, row: Row) -> Cell:
    if isinstance(row, RootRow):
        if kind is Kind.SUBMISSION_DATE:
            return submission_date(row.created_at)
        if kind is Kind.KEY:
            return row.instance_id
        if kind is Kind.META and column.meta is not None:
            return row.meta(column.meta)
        return None
    if kind is Kind.KEY:
        return row.key
    if kind is Kind.PARENT_KEY:
        return row.parent_key
    return None


@dataclass(frozen=True)
class Labeller:
    """Choice labels in one language (falling back to the default, then to the name)."""

    lang: str | None

    def label(self, labels: Mapping[str, str], fallback: str) -> str:
        if self.lang is not None:
            # A language is named as in the form ("French (fr)") or by its code ("fr").
            for name, text in labels.items():
                if text and (name == self.lang or name.endswith(f"({self.lang})")):
                    return text
        if labels.get("default"):
            return labels["default"]
        return next((text for text in labels.values() if text), fallback)

    def choice(self, field: Field, value: str) -> str:
        for choice in field.choices:
            if choice.value == value:
                return self.label(choice.labels, value)
        return value

    def value(self, field: Field, value: Any) -> Any:
        if value is None or not field.choices:
            return value
        if field.select_multiple:
            return ", ".join(self.choice(field, v) for v in str(value).split())
        return self.choice(field, str(value))

    def header(self, column: Column) -> str:
        if column.field is None:
            return column.header
        question = self.label(column.field.labels, column.header)
        if column.kind is Kind.GEO:
            return f"{question}-{column.header.rsplit('-', 1)[-1]}"
        if column.kind is Kind.CHOICE and column.choice is not None:
            return f"{question}/{self.choice(column.field, column.choice)}"
        return question


def _number(value: Any, keep_text: bool) -> Cell:
    """A numeric field's value as a number. Text that is not one (flagged at receipt) stays
    text where the format allows mixed cells (XLSX), and is None in typed columns."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return _text(value) if keep_text else None


def geo_number(value: Any, part: int) -> float | None:
    piece = geo_part(value, part)
    if piece is None:
        return None
    try:
        return float(piece)
    except ValueError:
        return None


def typed_cells(
    table: Table, row: Row, labeller: Labeller | None = None, *, keep_text: bool = False
) -> list[TypedCell]:
    """The row with numbers as numbers (ints, decimals, geopoint parts, choice flags), the
    submission date as a datetime and, given a labeller, choice labels instead of names."""
    out: list[TypedCell] = []
    for column in table.columns:
        kind = column.kind
        if kind is Kind.FIELD:
            assert column.field is not None
            value = _own(row, column)
            if column.field.type in NUMERIC_TYPES:
                out.append(_number(value, keep_text))
            elif labeller is not None:
                out.append(_text(labeller.value(column.field, value)))
            else:
                out.append(_text(value))
        elif kind is Kind.GEO:
            out.append(geo_number(_own(row, column), column.part))
        elif kind is Kind.CHOICE:
            out.append(_chosen(_own(row, column), column.choice))
        elif kind is Kind.SUBMISSION_DATE and isinstance(row, RootRow):
            out.append(row.created_at.astimezone(UTC))
        else:
            out.append(_meta_cell(kind, column, row))
    return out
