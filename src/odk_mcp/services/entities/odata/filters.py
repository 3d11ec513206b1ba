"""`$filter` to SQL: odata-query's parser and SQLAlchemy Core visitor, over entity columns.

Property values are text; comparing one with a number compares numerically where the text
is a number (and not at all where it is not), so `age gt 5` means what it says and never
fails on a list holding non-numeric values.
"""

from __future__ import annotations

from typing import Any

from odata_query import ast
from odata_query import exceptions as odata_errors
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.sqlalchemy.core import AstToSqlAlchemyCoreVisitor
from sqlalchemy import DateTime, Float, Integer, Numeric, String, case, cast
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.adapters.tables import entities
from odk_mcp.services.entities.odata.columns import Columns

MAX_FILTER_LENGTH = 4000
_NUMBER = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


def _numeric(expr: Any) -> Any:
    return case((expr.op("~")(_NUMBER), cast(expr, Numeric)), else_=None)


def _is_number(expr: Any) -> bool:
    return isinstance(getattr(expr, "type", None), (Integer, Numeric, Float))


def _is_time(expr: Any) -> bool:
    return isinstance(getattr(expr, "type", None), DateTime)


def _is_text(expr: Any) -> bool:
    return isinstance(getattr(expr, "type", None), String)


class _Visitor(AstToSqlAlchemyCoreVisitor):
    def __init__(self, columns: Columns) -> None:
        super().__init__(entities)  # type: ignore[arg-type]  # the library annotates a class
        self._columns = columns

    def visit_Identifier(self, node: ast.Identifier) -> Any:
        found = self._columns.field(node.name)
        if found is None:
            raise odata_errors.InvalidFieldException(node.name)
        return found

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        owner = node.owner
        if isinstance(owner, ast.Identifier) and owner.name == "__system":
            found = self._columns.system(node.attr)
            if found is not None:
                return found
        raise odata_errors.InvalidFieldException(f"{getattr(owner, 'name', '?')}/{node.attr}")

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        right = self.visit(node.right)
        if _is_text(left) and _is_number(right):
            left = _numeric(left)
        elif _is_number(left) and _is_text(right):
            right = _numeric(right)
        elif _is_time(left) and _is_text(right):
            right = cast(right, DateTime(timezone=True))  # a quoted date; a bad one fails as 400.18
        elif _is_text(left) and _is_time(right):
            left = cast(left, DateTime(timezone=True))
        return self.visit(node.comparator)(left, right)


def parse_filter(expression: str, columns: Columns) -> ColumnElement[bool]:
    """A SQL condition for an OData `$filter` (400.18 when unparseable, 501.5 for unknown fields)."""
    if len(expression) > MAX_FILTER_LENGTH:
        raise Problem(
            problems.UNPARSEABLE_ODATA_EXPRESSION, details={"reason": "The expression is too long."}
        )
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(expression))
        condition: ColumnElement[bool] = _Visitor(columns).visit(tree)
    except odata_errors.InvalidFieldException as exc:
        raise Problem(
            problems.UNSUPPORTED_ODATA_FIELD,
            f"The given OData filter expression references fields not supported by this server: {exc}",
            {"text": str(exc)},
        ) from exc
    except (odata_errors.ODataException, NotImplementedError, TypeError, AttributeError) as exc:
        raise Problem(
            problems.UNPARSEABLE_ODATA_EXPRESSION,
            f"The OData filter expression you provided could not be parsed: {exc}",
            {"reason": str(exc)[:500]},
        ) from exc
    if not hasattr(condition, "type"):
        raise Problem(
            problems.UNPARSEABLE_ODATA_EXPRESSION, details={"reason": "The filter is not a condition."}
        )
    return condition
