"""The answer columns quality rules compare, and their normalised form."""

from __future__ import annotations

import polars as pl

from odk_mcp.services.analytics.domain.fields import FieldIndex, Kind, kind_of
from odk_mcp.services.forms import Field

# XLSForm metadata questions: they differ between any two interviews and say nothing about
# the answers.
METADATA_NAMES = frozenset(
    {
        "start",
        "end",
        "today",
        "deviceid",
        "phonenumber",
        "username",
        "email",
        "audit",
        "simserial",
        "subscriberid",
        "instanceID",
        "instanceName",
        "deprecatedID",
    }
)
_ANSWER_KINDS = (Kind.NUMERIC, Kind.CATEGORICAL, Kind.MULTIPLE, Kind.TEXT, Kind.DATE, Kind.GEOPOINT)


def is_metadata(field: Field) -> bool:
    return field.name in METADATA_NAMES or field.path.startswith("/meta/") or field.path == "/meta"


def answer_fields(fields: FieldIndex, frame: pl.DataFrame) -> list[Field]:
    """Fields that hold an interviewee's answers and are present in the frame."""
    return [
        f
        for f in fields.fields
        if kind_of(f) in _ANSWER_KINDS
        and not is_metadata(f)
        and f.calculate is None
        and f.path in frame.columns
    ]


def normalised(path: str) -> pl.Expr:
    """An answer as comparable text: trimmed, lower-cased, inner whitespace collapsed, empty → null."""
    text = pl.col(path).cast(pl.String).str.strip_chars().str.to_lowercase()
    collapsed = (
        pl.when(text.str.contains(r"\s\s|[\t\n\r]")).then(text.str.replace_all(r"\s+", " ")).otherwise(text)
    )
    return pl.when(text == "").then(None).otherwise(collapsed).alias(path)
