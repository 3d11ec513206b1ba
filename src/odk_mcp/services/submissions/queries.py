"""Structured queries over a form's submissions: conditions on metadata and on answers, keyset
pages, and a total — the read side assistants (the MCP server) use.

Conditions are values, never SQL text: a data condition names a path of JSON keys into the
stored answers and an operator from a fixed list, and its value is bound as a parameter.
Ordering operators compare only values of the same JSON type (a number with numbers, a string
with strings), so an answer stored as text because it did not fit its type ("store and flag")
never matches a numeric range by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, text, tuple_
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms import FormLookup
from odk_mcp.services.submissions.adapters import store
from odk_mcp.services.submissions.adapters.tables import submissions, versions
from odk_mcp.services.submissions.views import SubmissionView

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "is_null", "not_null")
META_FIELDS = ("submittedAt", "submitterId", "reviewState", "instanceId")
MAX_LIMIT = 1000
MAX_IN_VALUES = 100


@dataclass(frozen=True)
class Condition:
    """`meta` names a metadata field (META_FIELDS); otherwise `path` names JSON keys into the answers."""

    op: str
    value: Any = None
    path: tuple[str, ...] = ()
    meta: str | None = None


@dataclass(frozen=True)
class Keyset:
    """Where a page ends: the last row's submission time and id (newest first)."""

    created_at: datetime
    id: int


@dataclass(frozen=True)
class QueryRow:
    submission: SubmissionView
    data: dict[str, Any]
    version_id: int


@dataclass(frozen=True)
class QueryPage:
    rows: list[QueryRow]
    total: int
    next_key: Keyset | None  # set when more rows follow this page


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise Problem(problems.UNEXPECTED_VALUE, "Filter values must be strings, numbers or booleans.")


def _data_clause(condition: Condition) -> ColumnElement[bool]:
    node = versions.c.data[condition.path]  # the `#>` path operator, the path bound as a parameter
    value = condition.value
    match condition.op:
        case "is_null":
            return or_(node.is_(None), func.jsonb_typeof(node) == "null")
        case "not_null":
            return and_(node.is_not(None), func.jsonb_typeof(node) != "null")
        case "eq":
            return node == func.to_jsonb(literal(value))
        case "ne":
            return or_(node.is_(None), node != func.to_jsonb(literal(value)))
        case "in":
            return or_(*(node == func.to_jsonb(literal(v)) for v in value))
        case "contains":
            # Substring of a text answer, or one of the chosen values of a select_multiple.
            pattern = "%" + str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            text_value = versions.c.data[condition.path].astext
            return and_(func.jsonb_typeof(node) == "string", text_value.ilike(pattern, escape="\\"))
    typed = func.jsonb_typeof(node) == _json_type(value)
    bound = func.to_jsonb(literal(value))
    compare = {"lt": node < bound, "lte": node <= bound, "gt": node > bound, "gte": node >= bound}
    return and_(typed, compare[condition.op])


def _meta_clause(condition: Condition) -> ColumnElement[bool]:
    columns: dict[str, ColumnElement[Any]] = {
        "submittedAt": submissions.c.created_at,
        "submitterId": submissions.c.submitter_id,
        "reviewState": submissions.c.review_state,
        "instanceId": submissions.c.instance_id,
    }
    column = columns[condition.meta or ""]
    value = condition.value
    match condition.op:
        case "is_null":
            return column.is_(None)
        case "not_null":
            return column.is_not(None)
        case "eq":
            return column.is_not_distinct_from(value)
        case "ne":
            return column.is_distinct_from(value)
        case "in":
            return column.in_(list(value))
        case "contains":
            raise Problem(problems.UNEXPECTED_VALUE, f"contains does not apply to {condition.meta}.")
    compare: dict[str, ColumnElement[bool]] = {
        "lt": column < value,
        "lte": column <= value,
        "gt": column > value,
        "gte": column >= value,
    }
    return compare[condition.op]


def check(condition: Condition) -> None:
    """Refuse a malformed condition with 400.8 before any SQL is built."""
    if condition.op not in OPERATORS:
        raise Problem(
            problems.UNEXPECTED_VALUE, f"Unknown operator {condition.op!r}.", {"allowed": OPERATORS}
        )
    if condition.meta is not None and condition.meta not in META_FIELDS:
        raise Problem(problems.UNEXPECTED_VALUE, f"Unknown metadata field {condition.meta!r}.")
    if condition.meta is None and not condition.path:
        raise Problem(problems.UNEXPECTED_VALUE, "A condition needs a field.")
    if condition.op in ("is_null", "not_null"):
        return
    if condition.op == "in":
        if not isinstance(condition.value, list) or not 0 < len(condition.value) <= MAX_IN_VALUES:
            raise Problem(problems.UNEXPECTED_VALUE, f"in needs a list of 1 to {MAX_IN_VALUES} values.")
        for v in condition.value:
            _json_type(v)
        return
    if condition.value is None:
        raise Problem(problems.UNEXPECTED_VALUE, f"{condition.op} needs a value.")
    if condition.meta is None:
        _json_type(condition.value)


class SubmissionQueries:
    def __init__(self, db: Database, authorizer: Authorizer, lookup: FormLookup) -> None:
        self._db = db
        self._authz = authorizer
        self._lookup = lookup

    async def query(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        conditions: list[Condition],
        limit: int,
        after: Keyset | None = None,
        timeout_ms: int = 10_000,
    ) -> QueryPage:
        """A page of live submissions matching every condition, newest first, with the total."""
        self._authz.require(actor, "submission.list", project_id, xml_form_id)
        form_id = await self._lookup.live_form_id(project_id, xml_form_id)
        if form_id is None:
            raise Problem(problems.NOT_FOUND)
        if not 1 <= limit <= MAX_LIMIT:
            raise Problem(problems.UNEXPECTED_VALUE, f"limit must be between 1 and {MAX_LIMIT}.")
        for condition in conditions:
            check(condition)
        where: list[ColumnElement[bool]] = [
            submissions.c.form_id == form_id,
            submissions.c.draft.is_(False),
            submissions.c.deleted_at.is_(None),
        ]
        where += [_meta_clause(c) if c.meta is not None else _data_clause(c) for c in conditions]
        page = store.submission_select().add_columns(versions.c.data, versions.c.id.label("version_id"))
        page = page.where(*where)
        if after is not None:
            page = page.where(
                tuple_(submissions.c.created_at, submissions.c.id) < (after.created_at, after.id)
            )
        page = page.order_by(submissions.c.created_at.desc(), submissions.c.id.desc()).limit(limit + 1)
        count = (
            select(func.count())
            .select_from(submissions)
            .join(versions, versions.c.id == submissions.c.current_version_id)
            .where(*where)
        )
        async with self._db.read() as conn:
            await conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
            rows = (await conn.execute(page)).mappings().all()
            total = int((await conn.execute(count)).scalar_one())
        more = len(rows) > limit
        rows = rows[:limit]
        out = [QueryRow(SubmissionView.from_row(r), r["data"], r["version_id"]) for r in rows]
        last = out[-1].submission if out and more else None
        return QueryPage(out, total, Keyset(last.created_at, last.id) if last else None)
