"""What property names mean in each table of a form's feed: the `Scope`s filters compile in.

The root table (`Submissions`) sees its non-repeat fields by their sanitised paths relative
to the form (`meta/instanceID`), `__id` and `__system/…`; a repeat table sees the fields of
that repeat (relative to it) and the submission's metadata through `$root/Submissions/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Numeric, cast

from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.domain.naming import path_parts
from odk_mcp.services.aggregation.odata.filters import (
    DATETIME,
    NUMBER,
    STRING,
    FieldRef,
    Scope,
    SystemColumn,
)
from odk_mcp.services.forms import Field

SYSTEM: Mapping[str, SystemColumn] = {
    "__system/submissionDate": SystemColumn(rows.c.created_at, DATETIME),
    "__system/updatedAt": SystemColumn(rows.c.updated_at, DATETIME),
    "__system/deletedAt": SystemColumn(rows.c.deleted_at, DATETIME),
    "__system/submitterId": SystemColumn(cast(rows.c.submitter_id, Numeric), NUMBER),
    "__system/reviewState": SystemColumn(rows.c.review_state, STRING),
    "__system/deviceId": SystemColumn(rows.c.device_id, STRING),
    "__system/edits": SystemColumn(cast(rows.c.edits, Numeric), NUMBER),
    "__system/formVersion": SystemColumn(rows.c.form_version, STRING),
    "__system/attachmentsPresent": SystemColumn(cast(rows.c.attachments_present, Numeric), NUMBER),
    "__system/attachmentsExpected": SystemColumn(cast(rows.c.attachments_expected, Numeric), NUMBER),
    "__system/status": SystemColumn(rows.c.status, STRING),
}
ROOT_ONLY: Mapping[str, SystemColumn] = {"__id": SystemColumn(rows.c.instance_id, STRING)}


def relative_fields(fields: Iterable[Field], repeat_path: str | None) -> dict[str, FieldRef]:
    """The fields a table shows (its values, groups and the repeats nested in it, whose own
    `repeat` is this table's), by sanitised path relative to the table."""
    out: dict[str, FieldRef] = {}
    for f in fields:
        if f.repeat != repeat_path:
            continue
        relative = f.path if repeat_path is None else f.path[len(repeat_path) :]
        out.setdefault("/".join(path_parts(relative)), FieldRef(f.path, f.type))
    return out


def root_scope(fields: Iterable[Field]) -> Scope:
    return Scope(
        data=rows.c.data,
        fields=relative_fields(fields, None),
        system={**SYSTEM, **ROOT_ONLY},
        root_system=SYSTEM,
    )


def repeat_scope(fields: Iterable[Field], repeat_path: str) -> Scope:
    return Scope(
        data=repeat_rows.c.data, fields=relative_fields(fields, repeat_path), system={}, root_system=SYSTEM
    )
