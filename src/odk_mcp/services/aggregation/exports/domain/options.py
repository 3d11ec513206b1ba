"""Export options: what the caller may ask of an export, parsed and checked once.

The names follow ODK Central's query string (`groupPaths`, `splitSelectMultiples`,
`deletedFields`, `attachments`, `$filter`) so Central's clients and links keep working; the
rest (`labels`, `lang`, `geometry`) are ours. A bad value is refused before any data is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

MAX_FILTER_LENGTH = 4000


class ExportFormat(StrEnum):
    """Every file an export can produce; the value is the URL suffix after `submissions`."""

    CSV_ZIP = "csv.zip"
    CSV = "csv"
    XLSX = "xlsx"
    GEOJSON = "geojson"
    SAV = "sav"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]

    @classmethod
    def parse(cls, value: Any) -> ExportFormat:
        try:
            return cls(str(value).lstrip("."))
        except ValueError:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                f"format must be one of {', '.join(f.value for f in cls)}.",
                {"field": "format", "value": str(value)[:100]},
            ) from None


_MEDIA_TYPES = {
    ExportFormat.CSV_ZIP: "application/zip",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.GEOJSON: "application/geo+json",
    ExportFormat.SAV: "application/x-spss-sav",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


@dataclass(frozen=True)
class ExportOptions:
    group_paths: bool = True
    split_select_multiples: bool = False
    deleted_fields: bool = False
    attachments: bool = True
    labels: bool = False
    lang: str | None = None
    geometry: str | None = None
    filter: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The options in their request spelling (how export jobs store them)."""
        out: dict[str, Any] = {
            "groupPaths": self.group_paths,
            "splitSelectMultiples": self.split_select_multiples,
            "deletedFields": self.deleted_fields,
            "attachments": self.attachments,
            "labels": self.labels,
        }
        for key, value in (("lang", self.lang), ("geometry", self.geometry), ("$filter", self.filter)):
            if value is not None:
                out[key] = value
        return out


_BOOLEANS = {
    "groupPaths": "group_paths",
    "splitSelectMultiples": "split_select_multiples",
    "deletedFields": "deleted_fields",
    "attachments": "attachments",
    "labels": "labels",
}
_TEXTS = {"lang": "lang", "geometry": "geometry", "$filter": "filter"}
# Central also reads numeric keys (passphrases of encrypted forms); we have no encryption,
# so they are accepted and ignored rather than refused.
_IGNORED_PREFIX_DIGITS = True


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise Problem(
        problems.INVALID_DATA_TYPE,
        f"{name} must be true or false.",
        {"field": name, "value": str(value)[:100]},
    )


def parse_options(raw: Mapping[str, Any], *, strict: bool = False) -> ExportOptions:
    """Options from a query string or a request body; unknown keys are refused when `strict`
    (JSON bodies of export jobs), ignored otherwise (query strings carry other parameters)."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _BOOLEANS:
            values[_BOOLEANS[key]] = _boolean(key, value)
        elif key in _TEXTS:
            if value is None:
                continue
            if not isinstance(value, str) or "\x00" in value:
                raise Problem(problems.UNEXPECTED_VALUE, f"{key} must be text.", {"field": key})
            if len(value) > MAX_FILTER_LENGTH:
                raise Problem(problems.VALUE_TOO_LONG, details={"field": key, "max": MAX_FILTER_LENGTH})
            values[_TEXTS[key]] = value.strip() or None
        elif strict and not (_IGNORED_PREFIX_DIGITS and key.isdigit()):
            raise Problem(
                problems.UNEXPECTED_ATTRIBUTE, f"Unknown export option {key[:100]}.", {"field": key}
            )
    return ExportOptions(**values)
