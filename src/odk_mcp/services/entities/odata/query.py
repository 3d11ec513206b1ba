"""The OData query options of the Entities set, checked and turned into one SELECT.

Default order is newest first by id, paged with a keyset `$skiptoken` (the last id sent),
so every page is an index range scan however deep it is. A `$orderby` pages by offset.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.adapters.tables import entities
from odk_mcp.services.entities.odata.columns import SYSTEM_FIELDS, Columns
from odk_mcp.services.entities.odata.filters import parse_filter

MAX_TOP = 100_000


@dataclass(frozen=True)
class Page:
    top: int | None
    skip: int
    count: bool
    after_id: int | None  # keyset position from $skiptoken (default order)
    offset_token: int  # offset position from $skiptoken (with $orderby)
    condition: ColumnElement[bool] | None
    order: list[Any]
    default_order: bool
    selected: frozenset[str] | None  # None: every field


def _int(name: str, value: str | None, maximum: int | None = None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise Problem(problems.INVALID_DATA_TYPE, f"{name} must be a whole number.", {"field": name})
    number = int(value)
    return min(number, maximum) if maximum is not None else number


def encode_token(value: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise Problem(problems.ODATA_INVALID_SKIPTOKEN) from exc
    if not isinstance(decoded, dict) or not all(
        isinstance(v, int) and 0 <= v < 2**63 for v in decoded.values()
    ):
        raise Problem(problems.ODATA_INVALID_SKIPTOKEN)
    return decoded


def _selection(value: str | None, columns: Columns) -> frozenset[str] | None:
    if value is None or value.strip() in ("", "*"):
        return None
    chosen = frozenset(p.strip() for p in value.split(","))
    for name in chosen:
        known = name in ("__id", "__system", "label") or name in columns.properties
        if name.startswith("__system/"):
            known = name.removeprefix("__system/") in SYSTEM_FIELDS
        if not known:
            raise Problem(
                problems.PROPERTY_NOT_FOUND,
                f"Could not find a property named '{name[:200]}'",
                {"property": name[:200]},
            )
    return chosen


def _ordering(value: str | None, columns: Columns) -> list[Any]:
    if value is None or not value.strip():
        return []
    order = []
    for part in value.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise Problem(problems.UNPARSEABLE_ODATA_EXPRESSION, f"Cannot order by '{part.strip()[:200]}'.")
        column = columns.path(words[0])
        if column is None:
            raise Problem(
                problems.UNSUPPORTED_ODATA_FIELD,
                f"The given OData $orderby references fields not supported by this server: {words[0][:200]}",
                {"text": words[0][:200]},
            )
        descending = len(words) == 2 and words[1].lower() == "desc"
        order.append(column.desc().nulls_last() if descending else column.asc().nulls_first())
    return order


def parse_page(params: dict[str, str], columns: Columns) -> Page:
    """Read `$top $skip $count $filter $select $orderby $skiptoken`."""
    count = params.get("$count", "false").strip().lower()
    if count not in ("true", "false"):
        raise Problem(problems.INVALID_DATA_TYPE, "$count must be true or false.", {"field": "$count"})
    order = _ordering(params.get("$orderby"), columns)
    token = params.get("$skiptoken")
    decoded = _decode_token(token) if token else {}
    filter_text = params.get("$filter")
    return Page(
        top=_int("$top", params.get("$top"), MAX_TOP),
        skip=_int("$skip", params.get("$skip")) or 0,
        count=count == "true",
        after_id=decoded.get("id") if not order else None,
        offset_token=decoded.get("o", 0) if order else 0,
        condition=parse_filter(filter_text, columns) if filter_text and filter_text.strip() else None,
        order=order,
        default_order=not order,
        selected=_selection(params.get("$select"), columns),
    )


def base_conditions(dataset_id: int, page: Page) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        entities.c.dataset_id == dataset_id,
        entities.c.deleted_at.is_(None),
    ]
    if page.condition is not None:
        conditions.append(page.condition)
    return conditions


def rows_query(dataset_id: int, page: Page) -> Select[Any]:
    """The page's rows; with `$top`, one more than asked, to know whether a next page exists."""
    stmt = select(
        entities.c.id,
        entities.c.uuid,
        entities.c.label,
        entities.c.data,
        entities.c.version,
        entities.c.conflict,
        entities.c.creator_id,
        entities.c.created_at,
        entities.c.updated_at,
    ).where(*base_conditions(dataset_id, page))
    if page.default_order:
        if page.after_id is not None:
            stmt = stmt.where(entities.c.id < page.after_id)
        stmt = stmt.order_by(entities.c.id.desc())
    else:
        stmt = stmt.order_by(*page.order, entities.c.id.desc())
    offset = page.skip + page.offset_token
    if offset:
        stmt = stmt.offset(offset)
    if page.top is not None:
        stmt = stmt.limit(page.top + 1)
    return stmt


def count_query(dataset_id: int, page: Page) -> Select[Any]:
    return select(func.count()).select_from(entities).where(*base_conditions(dataset_id, page))
