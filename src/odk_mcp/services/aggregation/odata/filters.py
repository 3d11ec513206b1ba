"""OData `$filter` (and `$orderby` terms) → SQLAlchemy over the read model.

The expression is parsed by the `odata-query` library (a real OData grammar) into its AST;
this module walks that AST and builds SQLAlchemy expressions against the read-model columns:
submission metadata (`__system/…`, `__id`) map to columns, form fields to their value in the
JSONB `data` column with a cast chosen by the field's type. Casts are guarded (a value that
was stored as text because it did not fit its type yields NULL instead of a SQL error), and
every literal is a bound parameter: nothing the client sends becomes SQL text.

Errors: unparseable → 400.18, unknown property → 400.23, out-of-range literal → 400.22,
a known feature we do not evaluate (lambda operators, geo functions, durations, regular
expressions, a group or repeat as a value) → 501.4 / 501.5.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from odata_query import ast
from odata_query import exceptions as odata_errors
from odata_query.grammar import ODataLexer, ODataParser
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.odata.errors import (
    UNPARSEABLE_FILTER,
    UNSUPPORTED_EXPRESSION,
    UNSUPPORTED_FIELD,
)

MAX_FILTER_CHARS = 4000
MAX_DEPTH = 60
ROOT_ALIAS = "__odkmcp_root__"  # `$root/Submissions/` rewritten to a lexable identifier

NUMBER = "number"
STRING = "string"
BOOLEAN = "boolean"
DATETIME = "datetime"
DATE = "date"
NULL = "null"

NUMERIC_TYPES = frozenset({"int", "decimal"})


@dataclass(frozen=True)
class Typed:
    sql: ColumnElement[Any]
    kind: str
    # For a form field: the JSONB key and field type, so `eq` can use the GIN index.
    json_key: str | None = None


@dataclass(frozen=True)
class SystemColumn:
    sql: ColumnElement[Any]
    kind: str


@dataclass(frozen=True)
class FieldRef:
    path: str  # absolute field path, the JSONB key
    type: str  # bind type, "structure" or "repeat"


@dataclass(frozen=True)
class Scope:
    """What names mean in one table: its own fields (by sanitised relative path), its metadata
    columns, and the submission metadata reachable through `$root/Submissions/`."""

    data: ColumnElement[Any]
    fields: Mapping[str, FieldRef]
    system: Mapping[str, SystemColumn]
    root_system: Mapping[str, SystemColumn]


def rewrite_root(expression: str) -> str:
    """Replace `$root/Submissions/` outside string literals by an identifier the lexer accepts."""
    out: list[str] = []
    i = 0
    in_string = False
    marker = "$root/Submissions/"
    while i < len(expression):
        ch = expression[i]
        if ch == "'":
            in_string = not in_string  # a doubled quote toggles twice: still inside
            out.append(ch)
            i += 1
        elif not in_string and expression.startswith(marker, i):
            out.append(ROOT_ALIAS + "/")
            i += len(marker)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse(expression: str, what: str = "$filter") -> ast._Node:
    """The AST of an OData expression, or 400.18 with the reason."""
    if len(expression) > MAX_FILTER_CHARS:
        raise Problem(
            UNPARSEABLE_FILTER, f"The {what} expression is longer than {MAX_FILTER_CHARS} characters."
        )
    if "\x00" in expression:
        raise Problem(UNPARSEABLE_FILTER, f"The {what} expression contains a NUL character.")
    try:
        node: ast._Node = ODataParser().parse(ODataLexer().tokenize(rewrite_root(expression)))
    except odata_errors.UnknownFunctionException as exc:
        raise Problem(
            UNSUPPORTED_EXPRESSION,
            f"The {what} expression uses a function this server does not support: {exc.function_name}.",
            {"function": exc.function_name},
        ) from exc
    except (odata_errors.ODataException, ValueError, RecursionError) as exc:
        raise Problem(
            UNPARSEABLE_FILTER, f"The {what} expression could not be parsed: {exc}", {"expression": what}
        ) from exc
    if node is None:
        raise Problem(UNPARSEABLE_FILTER, f"The {what} expression is empty.")
    _check_depth(node, what)
    return node


def _check_depth(node: ast._Node, what: str) -> None:
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Problem(UNPARSEABLE_FILTER, f"The {what} expression is nested too deeply.")
        children: list[Any] = []
        if isinstance(current, ast._Node):
            children = [getattr(current, f) for f in current.__dataclass_fields__]
        elif isinstance(current, (list, tuple)):
            children = list(current)
        stack.extend((c, depth + 1) for c in children if isinstance(c, (ast._Node, list, tuple)))


def compile_filter(expression: str, scope: Scope) -> ColumnElement[bool]:
    node = parse(expression)
    compiler = _Compiler(scope)
    typed = compiler.visit(node)
    if typed.kind not in (BOOLEAN, NULL):
        raise Problem(UNPARSEABLE_FILTER, "The $filter expression must be a condition (true or false).")
    return compiler.as_condition(typed)


def compile_term(expression: str, scope: Scope) -> Typed:
    """One `$orderby` term's value."""
    return _Compiler(scope).visit(parse(expression, "$orderby"))


def _out_of_range(value: str, kind: str) -> Problem:
    return Problem(
        problems.VALUE_OUT_OF_RANGE,
        f"Provided value '{value[:100]}' is out of range for type '{kind}'.",
        {"value": value[:100], "type": kind},
    )


def _number_literal(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise _out_of_range(text, "number") from exc
    if not number.is_finite() or abs(number.adjusted()) > 300:
        raise _out_of_range(text, "number")
    return number


class _Compiler:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def visit(self, node: ast._Node) -> Typed:
        method: Callable[[Any], Typed] | None = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise Problem(
                UNSUPPORTED_EXPRESSION,
                f"The $filter expression uses a feature this server does not support: {type(node).__name__}.",
                {"feature": type(node).__name__},
            )
        return method(node)

    # -- literals ----------------------------------------------------------------------------
    def visit_Null(self, node: ast.Null) -> Typed:
        return Typed(null(), NULL)

    def visit_Integer(self, node: ast.Integer) -> Typed:
        return Typed(literal(_number_literal(node.val), Numeric), NUMBER)

    def visit_Float(self, node: ast.Float) -> Typed:
        return Typed(literal(_number_literal(node.val), Numeric), NUMBER)

    def visit_Boolean(self, node: ast.Boolean) -> Typed:
        return Typed(literal(node.py_val, Boolean), BOOLEAN)

    def visit_String(self, node: ast.String) -> Typed:
        return Typed(literal(node.py_val, String), STRING)

    def visit_GUID(self, node: ast.GUID) -> Typed:
        return Typed(literal(node.val, String), STRING)

    def visit_Time(self, node: ast.Time) -> Typed:
        return Typed(literal(node.val, String), STRING)

    def visit_Date(self, node: ast.Date) -> Typed:
        try:
            value = node.py_val
        except ValueError as exc:
            raise _out_of_range(node.val, "date") from exc
        return Typed(literal(value, Date), DATE)

    def visit_DateTime(self, node: ast.DateTime) -> Typed:
        try:
            value = node.py_val
        except (ValueError, OverflowError) as exc:
            raise _out_of_range(node.val, "datetime") from exc
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return Typed(literal(value, DateTime(timezone=True)), DATETIME)

    # -- names -------------------------------------------------------------------------------
    def visit_Identifier(self, node: ast.Identifier) -> Typed:
        return self._property([*node.namespace, node.name] if not node.namespace else [_full_name(node)])

    def visit_Attribute(self, node: ast.Attribute) -> Typed:
        return self._property(_attribute_parts(node))

    def _property(self, parts: list[str]) -> Typed:
        name = "/".join(parts)
        if parts[0] == ROOT_ALIAS:
            rest = "/".join(parts[1:])
            column = self.scope.root_system.get(rest)
            if column is None:
                raise Problem(
                    UNSUPPORTED_FIELD,
                    f"Only submission metadata can be reached through $root/Submissions/ (not {rest}).",
                    {"property": "$root/Submissions/" + rest},
                )
            return Typed(column.sql, column.kind)
        system = self.scope.system.get(name)
        if system is not None:
            return Typed(system.sql, system.kind)
        if name.startswith("__"):
            raise Problem(
                UNSUPPORTED_FIELD,
                f"The property {name} cannot be used in an expression on this table.",
                {"property": name},
            )
        ref = self.scope.fields.get(name)
        if ref is None:
            raise Problem(
                problems.PROPERTY_NOT_FOUND, f"Could not find a property named '{name}'.", {"property": name}
            )
        if ref.type in ("structure", "repeat"):
            raise Problem(
                UNSUPPORTED_FIELD,
                f"{name} is a group or repeat: compare one of its fields instead.",
                {"property": name},
            )
        return field_value(self.scope.data, ref)

    # -- operators ---------------------------------------------------------------------------
    def visit_BoolOp(self, node: ast.BoolOp) -> Typed:
        left = self.as_condition(self.visit(node.left))
        right = self.as_condition(self.visit(node.right))
        combined = and_(left, right) if isinstance(node.op, ast.And) else or_(left, right)
        return Typed(combined, BOOLEAN)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Typed:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return Typed(not_(self.as_condition(operand)), BOOLEAN)
        number = self._as_number(operand)
        return Typed(-number.sql, NUMBER)

    def visit_BinOp(self, node: ast.BinOp) -> Typed:
        left = self._as_number(self.visit(node.left)).sql
        right = self._as_number(self.visit(node.right)).sql
        op = node.op
        if isinstance(op, ast.Add):
            return Typed(left + right, NUMBER)
        if isinstance(op, ast.Sub):
            return Typed(left - right, NUMBER)
        if isinstance(op, ast.Mult):
            return Typed(left * right, NUMBER)
        # Division by zero is NULL, not an error.
        divisor = func.nullif(right, 0)
        if isinstance(op, ast.Div):
            return Typed(left / divisor, NUMBER)
        return Typed(func.mod(left, divisor), NUMBER)

    def visit_Compare(self, node: ast.Compare) -> Typed:
        left = self.visit(node.left)
        op = node.comparator
        if isinstance(op, ast.In):
            if not isinstance(node.right, ast.List):
                raise Problem(UNPARSEABLE_FILTER, "in needs a list of values: x in ('a', 'b').")
            items = [self.visit(v) for v in node.right.val]
            pairs = [self._align(left, item) for item in items]
            return Typed(or_(*(a.sql == b.sql for a, b in pairs)) if pairs else false(), BOOLEAN)
        right = self.visit(node.right)
        if right.kind == NULL or left.kind == NULL:
            value = left if right.kind == NULL else right
            if isinstance(op, ast.Eq):
                return Typed(value.sql.is_(None), BOOLEAN)
            if isinstance(op, ast.NotEq):
                return Typed(value.sql.is_not(None), BOOLEAN)
            return Typed(false(), BOOLEAN)  # ordering against null is never true
        if isinstance(op, ast.Eq):
            # Not `a or b`: a SQL clause has no truth value.
            indexed = self._containment(left, right)
            if indexed is None:
                indexed = self._containment(right, left)
            if indexed is not None:
                return Typed(indexed, BOOLEAN)
        a, b = self._align(left, right)
        comparisons: dict[type, Callable[[Any, Any], Any]] = {
            ast.Eq: lambda x, y: x == y,
            ast.NotEq: lambda x, y: x.is_distinct_from(y),
            ast.Lt: lambda x, y: x < y,
            ast.LtE: lambda x, y: x <= y,
            ast.Gt: lambda x, y: x > y,
            ast.GtE: lambda x, y: x >= y,
        }
        return Typed(comparisons[type(op)](a.sql, b.sql), BOOLEAN)

    def _containment(self, field: Typed, value: Typed) -> ColumnElement[bool] | None:
        """`data @> {"/path": value}` for a field equal to a literal: served by the GIN index."""
        if field.json_key is None or not isinstance(value.sql, BindParameter):
            return None
        raw = value.sql.value
        if field.kind == NUMBER and value.kind == NUMBER:
            number = Decimal(str(raw))
            json_value: Any = int(number) if number == number.to_integral_value() else float(number)
        elif field.kind == STRING and value.kind == STRING:
            json_value = raw
        else:
            return None
        # A comparison (boolean result): typed as JSONB, `not` around it was deprecated.
        contained = cast(literal({field.json_key: json_value}, JSONB), JSONB)
        return self.scope.data.op("@>", is_comparison=True)(contained)

    # -- functions ---------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> Typed:
        name = _full_name(node.func).lower()
        args = [self.visit(a) for a in node.args]
        handler = _FUNCTIONS.get(name)
        if handler is None:
            raise Problem(
                UNSUPPORTED_EXPRESSION,
                f"The $filter expression uses a function this server does not support: {name}.",
                {"function": name},
            )
        return handler(self, args)

    # -- coercions ---------------------------------------------------------------------------
    def as_condition(self, typed: Typed) -> ColumnElement[bool]:
        if typed.kind == BOOLEAN:
            return typed.sql
        if typed.kind == NULL:
            return false()
        if typed.kind == STRING:
            return func.lower(typed.sql).in_(("true", "1"))
        raise Problem(UNPARSEABLE_FILTER, "A condition was expected where a value was given.")

    def _as_number(self, typed: Typed) -> Typed:
        if typed.kind == NUMBER:
            return typed
        if typed.kind == STRING and isinstance(typed.sql, BindParameter):
            # A literal is converted here: PostgreSQL would fold a failing cast of a constant
            # into an error even in a branch that is never taken.
            try:
                return Typed(literal(_number_literal(str(typed.sql.value)), Numeric), NUMBER)
            except Problem as exc:
                raise Problem(
                    UNPARSEABLE_FILTER,
                    f"'{str(typed.sql.value)[:100]}' is not a number.",
                    {"value": str(typed.sql.value)[:100]},
                ) from exc
        if typed.kind == STRING:
            return Typed(_safe_cast(typed.sql, "numeric", Numeric), NUMBER)
        raise Problem(UNPARSEABLE_FILTER, f"A number was expected, not a {typed.kind}.")

    def _as_text(self, typed: Typed) -> Typed:
        if typed.kind == STRING:
            return typed
        return Typed(cast(typed.sql, String), STRING)

    def _align(self, left: Typed, right: Typed) -> tuple[Typed, Typed]:
        """Both sides of a comparison in one SQL type."""
        kinds = {left.kind, right.kind}
        if len(kinds) == 1:
            return left, right
        if kinds == {NUMBER, STRING}:
            text_side = left if left.kind == STRING else right
            if text_side.json_key is not None or not _is_literal(text_side):
                # A text field against a number: compare as text (`age eq 5` on a string field).
                return self._as_text(left), self._as_text(right)
            return self._as_number(left), self._as_number(right)
        if kinds <= {DATE, DATETIME, STRING}:
            return self._as_datetime(left), self._as_datetime(right)
        if kinds == {BOOLEAN, STRING}:
            return self._as_text(left), self._as_text(right)
        raise Problem(
            UNPARSEABLE_FILTER, f"Cannot compare a {left.kind} with a {right.kind}.", {"types": sorted(kinds)}
        )

    def _as_datetime(self, typed: Typed) -> Typed:
        if typed.kind == DATETIME:
            return typed
        if typed.kind == DATE:
            return Typed(cast(typed.sql, DateTime(timezone=True)), DATETIME)
        if isinstance(typed.sql, BindParameter):
            text = str(typed.sql.value)
            try:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise Problem(
                    UNPARSEABLE_FILTER, f"'{text[:100]}' is not a date or time.", {"value": text[:100]}
                ) from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return Typed(literal(moment, DateTime(timezone=True)), DATETIME)
        return Typed(_safe_cast(typed.sql, "timestamptz", DateTime(timezone=True)), DATETIME)


def _is_literal(typed: Typed) -> bool:
    return isinstance(typed.sql, BindParameter)


def _safe_cast(sql: ColumnElement[Any], pg_type: str, sa_type: Any) -> ColumnElement[Any]:
    """`sql::type` when the text is a valid value of that type, else NULL (never an error)."""
    return case((func.pg_input_is_valid(sql, pg_type), cast(sql, sa_type)), else_=null())


def field_value(data: ColumnElement[Any], ref: FieldRef) -> Typed:
    """A form field's value out of a JSONB data column, typed by its bind type."""
    element = data[ref.path]
    if ref.type in NUMERIC_TYPES:
        number = case((func.jsonb_typeof(element) == "number", cast(element, Numeric)), else_=null())
        return Typed(number, NUMBER, ref.path)
    text = data[ref.path].astext
    if ref.type == "dateTime":
        return Typed(_safe_cast(text, "timestamptz", DateTime(timezone=True)), DATETIME)
    if ref.type == "date":
        return Typed(_safe_cast(text, "date", Date), DATE)
    return Typed(text, STRING, ref.path)


def _full_name(identifier: ast.Identifier) -> str:
    return ".".join((*identifier.namespace, identifier.name))


def _attribute_parts(node: ast.Attribute) -> list[str]:
    parts = [node.attr]
    owner: Any = node.owner
    while isinstance(owner, ast.Attribute):
        parts.append(owner.attr)
        owner = owner.owner
    if not isinstance(owner, ast.Identifier):
        raise Problem(UNPARSEABLE_FILTER, "A property path was expected.")
    parts.append(_full_name(owner))
    return list(reversed(parts))


# -- the functions we evaluate -------------------------------------------------------------------
def _arity(args: list[Typed], count: int, name: str) -> None:
    if len(args) != count:
        raise Problem(UNPARSEABLE_FILTER, f"{name} takes {count} argument(s).")


def _date_part(part: str) -> Callable[[_Compiler, list[Typed]], Typed]:
    def evaluate(compiler: _Compiler, args: list[Typed]) -> Typed:
        _arity(args, 1, part)
        value = args[0]
        source = value.sql if value.kind == DATE else compiler._as_datetime(value).sql
        return Typed(cast(func.extract(part, source), Numeric), NUMBER)

    return evaluate


def _string_fn(
    sql_fn: Callable[..., Any], kind: str, arity: int
) -> Callable[[_Compiler, list[Typed]], Typed]:
    def evaluate(compiler: _Compiler, args: list[Typed]) -> Typed:
        _arity(args, arity, "function")
        return Typed(sql_fn(*(compiler._as_text(a).sql for a in args)), kind)

    return evaluate


def _number_fn(sql_fn: Callable[..., Any]) -> Callable[[_Compiler, list[Typed]], Typed]:
    def evaluate(compiler: _Compiler, args: list[Typed]) -> Typed:
        _arity(args, 1, "function")
        return Typed(sql_fn(compiler._as_number(args[0]).sql), NUMBER)

    return evaluate


def _position(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A numeric expression as an integer argument, clamped so the cast cannot overflow."""
    return cast(func.least(func.greatest(func.round(value), -2_000_000_000), 2_000_000_000), Integer)


def _substring(compiler: _Compiler, args: list[Typed]) -> Typed:
    if len(args) not in (2, 3):
        raise Problem(UNPARSEABLE_FILTER, "substring takes 2 or 3 arguments.")
    text = compiler._as_text(args[0]).sql
    start = _position(compiler._as_number(args[1]).sql + 1)
    if len(args) == 2:
        return Typed(func.substr(text, start), STRING)
    length = _position(func.greatest(compiler._as_number(args[2]).sql, 0))
    return Typed(func.substr(text, start, length), STRING)


def _date_of(compiler: _Compiler, args: list[Typed]) -> Typed:
    _arity(args, 1, "date")
    if args[0].kind == DATE:
        return args[0]
    return Typed(cast(compiler._as_datetime(args[0]).sql, Date), DATE)


_FUNCTIONS: dict[str, Callable[[_Compiler, list[Typed]], Typed]] = {
    "year": _date_part("year"),
    "month": _date_part("month"),
    "day": _date_part("day"),
    "hour": _date_part("hour"),
    "minute": _date_part("minute"),
    "second": _date_part("second"),
    "now": lambda _c, args: Typed(func.now(), DATETIME),
    "date": _date_of,
    "tolower": _string_fn(func.lower, STRING, 1),
    "toupper": _string_fn(func.upper, STRING, 1),
    "trim": _string_fn(func.btrim, STRING, 1),
    "length": _string_fn(lambda s: cast(func.length(s), Numeric), NUMBER, 1),
    "concat": _string_fn(lambda a, b: func.concat(a, b), STRING, 2),
    "contains": _string_fn(lambda a, b: func.strpos(a, b) > 0, BOOLEAN, 2),
    "startswith": _string_fn(lambda a, b: func.starts_with(a, b), BOOLEAN, 2),
    "endswith": _string_fn(lambda a, b: func.right(a, func.length(b)) == b, BOOLEAN, 2),
    "indexof": _string_fn(lambda a, b: cast(func.strpos(a, b) - 1, Numeric), NUMBER, 2),
    "substring": _substring,
    "round": _number_fn(func.round),
    "floor": _number_fn(func.floor),
    "ceiling": _number_fn(func.ceiling),
}
