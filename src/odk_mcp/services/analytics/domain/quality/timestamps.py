"""Parsing ODK date and dateTime answers into UTC instants."""

from __future__ import annotations

import polars as pl

from odk_mcp.services.analytics.domain.fields import FieldIndex, Kind, kind_of
from odk_mcp.services.forms import Field


def instant(path: str) -> pl.Expr:
    """An ODK dateTime ("2026-01-05T10:02:03.123+03:00") or date ("2026-01-05") as UTC."""
    text = pl.col(path).cast(pl.String).str.strip_chars()
    with_zone = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us")
    zulu = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", strict=False, time_zone="UTC", time_unit="us")
    day = text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return pl.coalesce(with_zone, zulu, day).alias(path)


def parsed_name(path: str) -> str:
    return f"{path}\x00instant"


def instant_in(frame: pl.DataFrame, path: str) -> pl.Expr:
    """`instant(path)`, or its column parsed beforehand by `with_instants`."""
    name = parsed_name(path)
    return pl.col(name).alias(path) if name in frame.columns else instant(path)


def with_instants(frame: pl.DataFrame, fields: FieldIndex) -> pl.DataFrame:
    """The frame plus its date and dateTime answers parsed once, beside the text (a full scan
    reads them in several rules, and parsing the text is most of their cost)."""
    paths = [f.path for f in fields.of_kind(Kind.DATE, Kind.DATETIME) if f.path in frame.columns]
    return frame.with_columns(instant(p).alias(parsed_name(p)) for p in paths)


def metadata_field(fields: FieldIndex, name: str, configured: str | None) -> Field | None:
    """The start/end/today metadata field: the configured path, or the one named `name`."""
    if configured is not None:
        return fields.get(configured)
    for candidate in fields.fields:
        if candidate.name == name and kind_of(candidate) in (Kind.DATETIME, Kind.DATE):
            return candidate
    return None
