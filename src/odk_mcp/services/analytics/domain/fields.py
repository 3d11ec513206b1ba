"""What kind of variable a form field is, for choosing a statistic, and its value labels.

Analyses work on a Polars frame with one column per root-level field, named by the field's
absolute path (`/age`, `/grp/q1`), plus the submission metadata columns below. The frame's
values are the read model's typed values: numbers for int/decimal, strings otherwise
(select_multiple space-separated, geopoint "lat lon alt acc").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.forms import Field

SUBMISSION_ID = "submission_id"
CREATED_AT = "created_at"
SUBMITTER = "submitter_id"
DEVICE_ID = "device_id"
FORM_VERSION = "form_version"
INSTANCE_ID = "instance_id"
VERSION_ID = "version_id"
META_COLUMNS = (SUBMISSION_ID, CREATED_AT, SUBMITTER, DEVICE_ID, FORM_VERSION, INSTANCE_ID, VERSION_ID)


class Kind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    MULTIPLE = "multiple"
    DATE = "date"
    DATETIME = "datetime"
    GEOPOINT = "geopoint"
    TEXT = "text"
    OTHER = "other"


_NUMERIC_TYPES = frozenset({"int", "decimal"})
_OTHER_TYPES = frozenset({"structure", "repeat", "binary", "geotrace", "geoshape", "barcode"})


def kind_of(field: Field) -> Kind:
    """The statistical kind of a field (selects by their control, the rest by bind type)."""
    if field.select_multiple:
        return Kind.MULTIPLE
    if field.choices or field.choice_list:
        return Kind.CATEGORICAL
    if field.type in _NUMERIC_TYPES:
        return Kind.NUMERIC
    if field.type == "date":
        return Kind.DATE
    if field.type == "dateTime":
        return Kind.DATETIME
    if field.type == "geopoint":
        return Kind.GEOPOINT
    if field.type in _OTHER_TYPES or field.binary:
        return Kind.OTHER
    return Kind.TEXT


def label_of(field: Field, language: str | None = None) -> str:
    """The question's label in a language (or any), falling back to its name."""
    if language and language in field.labels:
        return field.labels[language]
    return next(iter(field.labels.values()), field.name) if field.labels else field.name


@dataclass(frozen=True)
class FieldIndex:
    """A form's root-level fields by path, for looking up and checking requested variables."""

    fields: tuple[Field, ...]

    @classmethod
    def of(cls, fields: Iterable[Field]) -> FieldIndex:
        return cls(tuple(f for f in fields if f.repeat is None))

    def get(self, path: str) -> Field:
        for candidate in self.fields:
            if candidate.path == path:
                return candidate
        raise AnalysisError("unknownField", f"The form has no root-level field {path!r}.", {"field": path})

    def require(self, path: str, kinds: Sequence[Kind], role: str) -> Field:
        """The field at `path`, if it is of one of `kinds` (else a clear AnalysisError)."""
        found = self.get(path)
        kind = kind_of(found)
        if kind not in kinds:
            raise AnalysisError(
                "wrongFieldKind",
                f"The {role} {path!r} is {kind.value}; expected {' or '.join(k.value for k in kinds)}.",
                {"field": path, "kind": kind.value, "expected": [k.value for k in kinds]},
            )
        return found

    def of_kind(self, *kinds: Kind) -> list[Field]:
        return [f for f in self.fields if kind_of(f) in kinds]


def category_order(field: Field, observed: Iterable[str]) -> list[str]:
    """Categories in the form's choice order, then any observed value not among the choices
    (an older version's choice, or free text in an `or_other`), sorted."""
    declared = [c.value for c in field.choices]
    known = set(declared)
    extra = sorted({v for v in observed if v not in known})
    seen = set(observed)
    return [v for v in declared if v in seen] + extra


def choice_labels(field: Field, language: str | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for choice in field.choices:
        if language and language in choice.labels:
            out[choice.value] = choice.labels[language]
        else:
            out[choice.value] = next(iter(choice.labels.values()), choice.value)
    return out
