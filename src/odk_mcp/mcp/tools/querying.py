"""Turning a query_submissions request into service conditions: field paths checked against the
form's schema, sensitive fields refused as filters without `pii`, values typed, cursors opaque."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from odk_mcp.services.forms import SensitivityView
from odk_mcp.services.submissions import META_FIELDS, Condition, Keyset

Scalar = str | int | float | bool
Op = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "is_null", "not_null"]
NUMERIC_TYPES = frozenset({"int", "decimal"})


class Filter(BaseModel):
    field: Annotated[
        str,
        Field(
            max_length=500,
            description="A field path from get_form_schema (e.g. /household/size), or submission metadata:"
            " submittedAt, submitterId, reviewState, instanceId.",
        ),
    ]
    op: Op = Field(description="Comparison; lt/lte/gt/gte compare numbers with numbers and text with text.")
    value: Scalar | list[Scalar] | None = Field(
        default=None, description="The value (a list for `in`); omitted for is_null/not_null."
    )


def bad_request(message: str) -> ToolError:
    return ToolError(json.dumps({"code": 400.8, "message": message}))


def conditions(filters: list[Filter], view: SensitivityView, may_see_pii: bool) -> list[Condition]:
    fields = {f.path: f for f in view.schema.fields}
    out = []
    for f in filters:
        if f.field in META_FIELDS:
            value: Any = f.value
            if f.field == "submittedAt" and f.op not in ("is_null", "not_null"):
                value = [_time(v) for v in f.value] if isinstance(f.value, list) else _time(f.value)
            out.append(Condition(op=f.op, value=value, meta=f.field))
            continue
        spec = fields.get(f.field)
        if spec is None or spec.type in ("structure", "repeat"):
            raise bad_request(f"{f.field} is not a data field of this form (see get_form_schema).")
        if spec.repeat is not None:
            raise bad_request(f"{f.field} is inside a repeat; filters apply to fields outside repeats only.")
        if f.field in view.sensitive_paths and not may_see_pii:
            raise bad_request(f"{f.field} is sensitive: filtering on it needs the `pii` scope.")
        value = f.value
        if spec.type in NUMERIC_TYPES and f.op in ("eq", "ne", "lt", "lte", "gt", "gte"):
            value = _number(value)
        out.append(Condition(op=f.op, value=value, path=tuple(f.field.strip("/").split("/"))))
    return out


def _time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            "submittedAt values must be ISO 8601 times (2026-01-31 or 2026-01-31T08:00:00Z)."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # times without an offset are UTC, as the API renders them
    return parsed


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad_request("This field is numeric: compare it with a number.")
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            raise bad_request("This field is numeric: compare it with a number.") from None
    return value


def query_hash(project_id: int, xml_form_id: str, filters: list[Filter]) -> str:
    spec = json.dumps([project_id, xml_form_id, [f.model_dump() for f in filters]], sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def encode_cursor(key: Keyset, qhash: str) -> str:
    raw = json.dumps({"t": key.created_at.isoformat(), "i": key.id, "q": qhash}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, qhash: str) -> Keyset:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key = Keyset(datetime.fromisoformat(data["t"]), int(data["i"]))
        same_query = data["q"] == qhash
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_request("The cursor is not valid; start again without one.") from None
    if not same_query:
        raise bad_request(
            "This cursor belongs to another query; pass the same filters, or start without a cursor."
        )
    return key
