"""The tables of an export and their columns, laid out the way ODK Central lays out its CSVs.

Central's rules (lib/data/briefcase.js), which every format here shares:
- the root table starts with `SubmissionDate`, then every non-group, non-repeat field in form
  order (depth first), named by its path relative to its table with `-` between groups
  (`grp-q`; only the field name with `groupPaths=false`), then `KEY`, `SubmitterID`,
  `SubmitterName`, `AttachmentsPresent`, `AttachmentsExpected`, `Status`, `ReviewState`,
  `DeviceID`, `Edits`, `FormVersion`;
- a geopoint is four columns `-Latitude`, `-Longitude`, `-Altitude`, `-Accuracy`;
- with `splitSelectMultiples`, a select_multiple is followed by one `name/value` column per
  value seen in the exported data (sorted), 1 when chosen and 0 otherwise;
- each repeat is its own table (file `<formId>-<repeat name>.csv`, `~1`, `~2`… when two
  repeats share a name) holding the fields whose innermost repeat it is, then `PARENT_KEY`
  and `KEY`; repeat tables follow in form order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from odk_mcp.services.forms import Field, FormSchema

GEO_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")
ROOT_METADATA = (
    "SubmitterID",
    "SubmitterName",
    "AttachmentsPresent",
    "AttachmentsExpected",
    "Status",
    "ReviewState",
    "DeviceID",
    "Edits",
    "FormVersion",
)
NUMERIC_TYPES = frozenset({"int", "decimal"})
# Characters the `sanitize-filename` package Central uses removes from file names.
_UNSAFE_FILENAME = re.compile(r'[/\\?<>:*|"\x00-\x1f\x80-\x9f]')


class Kind(StrEnum):
    FIELD = "field"  # the field's value
    GEO = "geo"  # one part of a geopoint (part = 0..3)
    CHOICE = "choice"  # 1/0: whether `choice` is among a select_multiple's values
    SUBMISSION_DATE = "SubmissionDate"
    KEY = "KEY"
    PARENT_KEY = "PARENT_KEY"
    META = "meta"  # one of ROOT_METADATA (name in `meta`)


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind
    field: Field | None = None
    part: int = 0
    choice: str | None = None
    meta: str | None = None


@dataclass(frozen=True)
class Table:
    name: str  # the xmlFormId for the root, the repeat's name otherwise
    file_name: str
    repeat_path: str | None  # None for the root table
    columns: tuple[Column, ...]

    @property
    def is_root(self) -> bool:
        return self.repeat_path is None

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]


def sanitize_filename(name: str) -> str:
    cleaned = _UNSAFE_FILENAME.sub("", name).strip()
    return cleaned if cleaned not in ("", ".", "..") else "_"


def _base(field: Field, table_path: str | None, group_paths: bool) -> str:
    if not group_paths:
        return field.name
    prefix = (table_path or "") + "/"
    relative = field.path[len(prefix) :] if field.path.startswith(prefix) else field.path.lstrip("/")
    return relative.replace("/", "-")


def _field_columns(
    field: Field, table_path: str | None, group_paths: bool, select_values: Mapping[str, Sequence[str]]
) -> list[Column]:
    base = _base(field, table_path, group_paths)
    if field.type == "geopoint":
        return [Column(f"{base}-{p}", Kind.GEO, field, part=i) for i, p in enumerate(GEO_PARTS)]
    columns = [Column(base, Kind.FIELD, field)]
    if field.select_multiple:
        columns += [
            Column(f"{base}/{v}", Kind.CHOICE, field, choice=v) for v in select_values.get(field.path, ())
        ]
    return columns


def build_tables(
    schema: FormSchema,
    *,
    group_paths: bool = True,
    select_values: Mapping[str, Sequence[str]] | None = None,
    root_only: bool = False,
) -> list[Table]:
    """The root table, then one table per repeat in form order (unless `root_only`).

    `select_values` (field path → values seen) is given only when select_multiples are split."""
    values = select_values or {}
    repeats = [f for f in schema.fields if f.type == "repeat"]
    columns: dict[str | None, list[Column]] = {None: [Column("SubmissionDate", Kind.SUBMISSION_DATE)]}
    for repeat in repeats:
        columns[repeat.path] = []
    for field in schema.fields:
        if field.type in ("repeat", "structure"):
            continue
        if field.repeat is not None and field.repeat not in columns:
            continue  # a field of a repeat the schema does not list (should not happen)
        columns[field.repeat].extend(_field_columns(field, field.repeat, group_paths, values))
    columns[None].append(Column("KEY", Kind.KEY))
    columns[None].extend(Column(name, Kind.META, meta=name) for name in ROOT_METADATA)

    form_id = sanitize_filename(schema.xml_form_id)
    tables = [Table(schema.xml_form_id, f"{form_id}.csv", None, tuple(columns[None]))]
    if root_only:
        return tables
    totals: dict[str, int] = {}
    for repeat in repeats:
        totals[repeat.name] = totals.get(repeat.name, 0) + 1
    seen: dict[str, int] = {}
    for repeat in repeats:
        suffix = ""
        if totals[repeat.name] > 1:
            seen[repeat.name] = seen.get(repeat.name, 0) + 1
            suffix = f"~{seen[repeat.name]}"
        own = columns[repeat.path] + [Column("PARENT_KEY", Kind.PARENT_KEY), Column("KEY", Kind.KEY)]
        file_name = sanitize_filename(f"{schema.xml_form_id}-{repeat.name}{suffix}.csv")
        tables.append(Table(repeat.name, file_name, repeat.path, tuple(own)))
    return tables


def select_multiple_paths(schema: FormSchema) -> dict[str | None, list[str]]:
    """Paths of select_multiple fields by their table (repeat path, None for the root)."""
    out: dict[str | None, list[str]] = {}
    for field in schema.fields:
        if field.select_multiple and field.type not in ("repeat", "structure"):
            out.setdefault(field.repeat, []).append(field.path)
    return out


def geometry_field(schema: FormSchema, path: str | None) -> Field | None:
    """The field whose value becomes a GeoJSON geometry: the one named, else the first root
    geopoint. Only root-table geo fields qualify (a feature is one submission)."""
    geo = [f for f in schema.fields if f.type in ("geopoint", "geotrace", "geoshape") and f.repeat is None]
    if path is None:
        return next((f for f in geo if f.type == "geopoint"), geo[0] if geo else None)
    return next((f for f in geo if f.path == path or f.name == path), None)
