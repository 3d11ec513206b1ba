"""The ODK XPath grammar (lark, LALR) and the expression tree it compiles to, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from odk_mcp.services.submissions.domain.xpath.functions import _FUNCTIONS, _LAZY_ARITY, _UNSUPPORTED
from odk_mcp.services.submissions.domain.xpath.limits import (
    MAX_NESTING,
    NotEvaluated,
    Reason,
    _fail,
    _Unevaluable,
)

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: eq_expr (AND eq_expr)*
?eq_expr: rel_expr ((EQ | NEQ) rel_expr)*
?rel_expr: add_expr ((LT | LE | GT | GE) add_expr)*
?add_expr: mul_expr ((PLUS | MINUS) mul_expr)*
?mul_expr: unary_expr ((STAR | DIV | MOD) unary_expr)*
?unary_expr: union_expr
    | MINUS unary_expr -> negate
?union_expr: path_expr (PIPE path_expr)*
?path_expr: location_path
    | filter_expr
    | filter_expr (SLASH | DSLASH) relative_path -> filter_path
?filter_expr: primary
    | filter_expr predicate -> filtered
?primary: "(" or_expr ")"
    | STRING -> string
    | NUMBER -> number
    | VARIABLE -> variable
    | call
call: NAME "(" [or_expr ("," or_expr)*] ")"
location_path: relative_path -> relative
    | SLASH relative_path? -> absolute
    | DSLASH relative_path -> absolute
relative_path: step ((SLASH | DSLASH) step)*
step: NAME predicate* -> named_step
    | STAR predicate* -> any_step
    | DOT -> self_step
    | DOTDOT -> parent_step
    | "@" (NAME | STAR) -> unsupported_step
    | AXIS (NAME | STAR) predicate* -> unsupported_step
predicate: "[" or_expr "]"

OR: "or"
AND: "and"
EQ: "="
NEQ: "!="
LT: "<"
LE: "<="
GT: ">"
GE: ">="
PLUS: "+"
MINUS: "-"
STAR: "*"
DIV: "div"
MOD: "mod"
PIPE: "|"
SLASH: "/"
DSLASH: "//"
DOT: "."
DOTDOT: ".."
STRING: /"[^"]*"|'[^']*'/
NUMBER: /[0-9]+(\.[0-9]*)?|\.[0-9]+/
VARIABLE: /\$[^\W\d][\w.\-]*(:[^\W\d][\w.\-]*)?/
AXIS.2: /[^\W\d][\w.\-]*::/
NAME: /[^\W\d][\w.\-]*(:[^\W\d][\w.\-]*)?/
%ignore /\s+/
"""


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


@dataclass(frozen=True, slots=True)
class _Literal:
    value: str | float


@dataclass(frozen=True, slots=True)
class _Chain:
    """Operands joined by operators of one precedence level, left to right."""

    first: _Expr
    rest: tuple[tuple[str, _Expr], ...]


@dataclass(frozen=True, slots=True)
class _Negate:
    operand: _Expr


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Expr, ...]


@dataclass(frozen=True, slots=True)
class _Step:
    name: str  # an element name, "*", "." or ".."
    predicates: tuple[_Expr, ...] = ()


@dataclass(frozen=True, slots=True)
class _Path:
    base: _Expr | None  # a filter expression the steps start from, e.g. current()
    absolute: bool
    steps: tuple[_Step, ...]


@dataclass(frozen=True, slots=True)
class _Filter:
    base: _Expr
    predicates: tuple[_Expr, ...]


@dataclass(frozen=True, slots=True)
class _Union:
    parts: tuple[_Expr, ...]


_Expr = _Literal | _Chain | _Negate | _Call | _Path | _Filter | _Union


@lru_cache(maxsize=1024)
def _compile(expression: str) -> _Expr | NotEvaluated:
    """Parsed once per distinct expression; the caller has checked its length."""
    try:
        tree = _parser().parse(expression)
    except LarkError as exc:
        column = getattr(exc, "column", None)
        where = f" at column {column}" if isinstance(column, int) and column > 0 else ""
        return NotEvaluated(Reason.PARSE_ERROR, f"not a valid XPath expression{where}")
    if _nesting(tree) > MAX_NESTING:
        return NotEvaluated(Reason.TOO_COMPLEX, f"nested deeper than {MAX_NESTING} levels")
    try:
        return _convert(tree)
    except _Unevaluable as exc:
        return NotEvaluated(exc.reason, exc.detail)


def _nesting(tree: Tree[Token]) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
    return deepest


def _convert(node: Tree[Token] | Token) -> _Expr:
    if isinstance(node, Token):
        _fail(Reason.PARSE_ERROR, f"unexpected {node.type}")
    kind, kids = node.data, node.children
    if kind in ("or_expr", "and_expr", "eq_expr", "rel_expr", "add_expr", "mul_expr"):
        rest = tuple((str(kids[i]), _convert(kids[i + 1])) for i in range(1, len(kids), 2))
        return _Chain(_convert(kids[0]), rest)
    if kind == "negate":
        return _Negate(_convert(kids[1]))
    if kind == "union_expr":
        return _Union(tuple(_convert(k) for k in kids if not isinstance(k, Token)))
    if kind == "string":
        return _Literal(str(kids[0])[1:-1])
    if kind == "number":
        return _Literal(float(str(kids[0])))
    if kind == "call":
        return _checked_call(str(kids[0]), tuple(_convert(k) for k in kids[1:]))
    if kind == "filtered":
        base = _convert(kids[0])
        predicate = _convert(_only_child(kids[1]))
        if isinstance(base, _Filter):
            return _Filter(base.base, (*base.predicates, predicate))
        return _Filter(base, (predicate,))
    if kind == "filter_path":
        return _Path(_convert(kids[0]), False, _steps(kids[1:]))
    if kind == "relative":
        return _Path(None, False, _steps(kids))
    if kind == "absolute":
        return _Path(None, True, _steps(kids))
    if kind == "variable":
        _fail(Reason.UNSUPPORTED_SYNTAX, "variables ($name) are not part of ODK XPath")
    _fail(Reason.UNSUPPORTED_SYNTAX, f"unsupported construct: {kind}")


def _only_child(node: Tree[Token] | Token) -> Tree[Token] | Token:
    assert isinstance(node, Tree) and len(node.children) == 1
    return node.children[0]


def _steps(kids: Sequence[Tree[Token] | Token]) -> tuple[_Step, ...]:
    """The steps of the relative path among `kids`, after any leading separator."""
    parts = [part for kid in kids for part in (kid.children if isinstance(kid, Tree) else [kid])]
    if any(isinstance(part, Token) and part.type == "DSLASH" for part in parts):
        _fail(Reason.UNSUPPORTED_SYNTAX, "the descendant axis (//) is not supported")
    return tuple(_step(part) for part in parts if isinstance(part, Tree))


def _step(node: Tree[Token]) -> _Step:
    kind, kids = node.data, node.children
    if kind == "self_step":
        return _Step(".")
    if kind == "parent_step":
        return _Step("..")
    if kind in ("named_step", "any_step"):
        return _Step(str(kids[0]), tuple(_convert(_only_child(p)) for p in kids[1:]))
    _fail(Reason.UNSUPPORTED_SYNTAX, "attributes (@) and axes (name::) are not supported")


def _checked_call(name: str, args: tuple[_Expr, ...]) -> _Call:
    """A call to a known function with a valid number of arguments, checked once, at parse time."""
    if name in _LAZY_ARITY:
        low, high = _LAZY_ARITY[name]
    elif name in _FUNCTIONS:
        low, high = _FUNCTIONS[name][:2]
    elif name in _UNSUPPORTED:
        _fail(Reason.UNSUPPORTED_FUNCTION, f"{name}(): {_UNSUPPORTED[name]}")
    else:
        _fail(Reason.UNKNOWN_FUNCTION, f"{name[:80]}() is not an ODK XPath function")
    if len(args) < low or (high is not None and len(args) > high):
        expected = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
        _fail(Reason.TYPE_ERROR, f"{name}() takes {expected} arguments, not {len(args)}")
    if name == "indexed-repeat" and len(args) % 2 == 0:
        _fail(Reason.TYPE_ERROR, "indexed-repeat() takes a field, then pairs of repeat and index")
    return _Call(name, args)
