"""Evaluating a form's XPath rules (`required`, `constraint`, `relevant`) on a received submission.

Pure, no I/O. The expressions come from uploaded forms, so they are untrusted: each is bounded in
length, nesting depth and evaluation steps, and `regex()` runs on RE2, whose matching time is
linear in the input (no catastrophic backtracking) and which refuses patterns that would blow up
at compile time. Whatever cannot be decided with confidence (an unknown function, a secondary
instance, a type error, a rule ODK clients disagree on) comes back as `NotEvaluated` with a
reason: never an exception, never a guess.

Where ODK departs from XPath 1.0 this follows ODK Collect (JavaRosa), the reference client:
- an absolute path into a repeat means the repeat instance being evaluated (`/data/member/age`
  in a rule on `/data/member/x` is that member's age);
- a path used as a value is its one node's value; several nodes there is an error (Collect says
  "use indexed-repeat()"), and a path in a boolean context is true when that value is non-empty;
- dates and date-times compare and subtract as whole days since 1970-01-01 (a date-time counts
  as its own calendar date); `decimal-date-time()` gives fractional days;
- `regex()` must match the whole value; `sum()`, `min()` and `max()` skip empty values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from functools import cache, lru_cache
from operator import ge, gt, le, lt
from typing import Any, NoReturn, TypeGuard

import re2
from lark import Lark, Token, Tree
from lark.exceptions import LarkError
from lxml import etree

MAX_EXPRESSION_CHARS = 20_000
MAX_NESTING = 64  # levels of the parse tree; keeps evaluation far from Python's recursion limit
MAX_STEPS = 50_000  # expressions evaluated plus nodes visited, per evaluation (~75 ms at worst)
MAX_TEXT_CHARS = 1_000_000  # longest string concat()/join() may build
MAX_REGEX_PATTERN_CHARS = 1_000
# RE2 runs in time linear in the value's length times the pattern's program size; its slowest
# patterns take ~10 ns per unit, so this bounds one regex() at ~100 ms.
MAX_REGEX_WORK = 10_000_000


class Reason(StrEnum):
    """Why a rule was not evaluated."""

    PARSE_ERROR = "parse error"
    UNSUPPORTED_SYNTAX = "unsupported syntax"
    UNKNOWN_FUNCTION = "unknown function"
    UNSUPPORTED_FUNCTION = "unsupported function"
    TYPE_ERROR = "type error"
    TOO_COMPLEX = "too complex"
    BAD_CONTEXT = "bad context path"
    INTERNAL_ERROR = "internal error"


@dataclass(frozen=True)
class NotEvaluated:
    """The rule could not be decided; `detail` says why, for the finding's record."""

    reason: Reason
    detail: str

    def __bool__(self) -> bool:
        # `if evaluate_boolean(...)` would silently treat "not evaluated" as true.
        raise TypeError("NotEvaluated is neither true nor false: test isinstance(result, NotEvaluated)")


class _Unevaluable(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _fail(reason: Reason, detail: str) -> NoReturn:
    raise _Unevaluable(reason, detail)


# --- The instance ------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Node:
    name: str
    parent: _Node | None
    value: str | float = ""  # a leaf's value: text, or a number when the data was typed
    index: int = 1  # position among same-name siblings, 1-based (a repeat instance's number)
    order: int = 0  # document order
    children: list[_Node] = field(default_factory=list)
    by_name: dict[str, list[_Node]] = field(default_factory=dict)

    def add(self, name: str, value: str | float, order: int) -> _Node:
        same_name = self.by_name.setdefault(name, [])
        child = _Node(name, self, value, len(same_name) + 1, order)
        same_name.append(child)
        self.children.append(child)
        return child

    def named(self, name: str) -> list[_Node]:
        return self.by_name.get(name, [])

    def typed_value(self) -> str | float:
        if not self.children:
            return self.value
        texts, stack = [], list(reversed(self.children))
        while stack:
            node = stack.pop()
            if node.children:
                stack.extend(reversed(node.children))
            else:
                texts.append(node.value if isinstance(node.value, str) else _text_of_number(node.value))
        return "".join(texts)


def _leaf_value(value: Any) -> str | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        try:
            return float(value)
        except OverflowError:  # an int beyond a double's range
            return math.inf if value > 0 else -math.inf
        except ValueError:  # Decimal('sNaN')
            return math.nan
    return str(value)


class Instance:
    """A submission's data as a tree of named nodes; a repeat's instances are same-name siblings."""

    def __init__(self, document: _Node) -> None:
        self._document = document
        self.root_name = document.children[0].name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], root: str) -> Instance:
        """From the typed data (`read_data`): groups as objects, repeats as lists, None for empty.

        Numbers stay numbers, as in Collect, where an int field's 0 is false and equals '0.0'.
        `root` is the name of the submission's root element, which the expressions start with.
        """
        document = _Node("", None)
        root_node = document.add(root, "", 1)
        order = 1

        def entries(parent: _Node, group: Mapping[str, Any]) -> list[tuple[_Node, str, Any]]:
            return [
                (parent, name, item)
                for name, value in group.items()
                for item in (value if isinstance(value, list | tuple) else [value])
            ]

        stack = entries(root_node, data)[::-1]
        while stack:
            parent, name, item = stack.pop()
            order += 1
            if isinstance(item, Mapping):
                stack.extend(entries(parent.add(name, "", order), item)[::-1])
            else:
                parent.add(name, _leaf_value(item), order)
        return cls(document)

    @classmethod
    def from_xml(cls, element: etree._Element) -> Instance:
        """From the submission's root element, all values as text; attributes are ignored."""
        document = _Node("", None)
        order = 0
        stack: list[tuple[_Node, etree._Element]] = [(document, element)]
        while stack:
            parent, el = stack.pop()
            order += 1
            kids = [c for c in el if isinstance(c.tag, str)]
            node = parent.add(etree.QName(el).localname, "" if kids else (el.text or ""), order)
            stack.extend((node, kid) for kid in reversed(kids))
        return cls(document)

    def contexts(self, field_path: str, repeats: Collection[str]) -> list[str]:
        """Where a schema field occurs, as context paths: one per repeat instance (`/member[2]/age`).

        `repeats` are the schema's repeat paths. A field in a repeat with no instances occurs
        nowhere; a field absent from the data still occurs once (its value is empty).
        """
        found: list[tuple[str, _Node | None]] = [("", self._document.children[0])]
        prefix = ""
        for name in field_path.strip("/").split("/"):
            prefix += "/" + name
            step: list[tuple[str, _Node | None]] = []
            for path, node in found:
                kids = node.named(name) if node is not None else []
                if prefix in repeats or len(kids) > 1:
                    step.extend((f"{path}/{name}[{kid.index}]", kid) for kid in kids)
                else:
                    step.append((f"{path}/{name}", kids[0] if kids else None))
            found = step
        return [path for path, _ in found]

    def _node_at(self, context_path: str) -> _Node:
        root = node = self._document.children[0]
        for part in context_path.strip("/").split("/") if context_path.strip("/") else []:
            step = _CONTEXT_STEP.fullmatch(part)
            if step is None:
                _fail(Reason.BAD_CONTEXT, f"not a context path: {context_path[:200]}")
            name, wanted = step.group(1), int(step.group(2)) if step.group(2) else None
            kids = node.named(name)
            if node is root and not kids and name == root.name:
                _fail(Reason.BAD_CONTEXT, f"{context_path[:200]}: context paths leave out the root element")
            if wanted is not None:
                if not 1 <= wanted <= len(kids):
                    _fail(Reason.BAD_CONTEXT, f"{context_path[:200]}: there is no {name}[{wanted}]")
                node = kids[wanted - 1]
            elif len(kids) > 1:
                _fail(Reason.BAD_CONTEXT, f"{context_path[:200]}: {name} repeats, say which ({name}[n])")
            elif kids:
                node = kids[0]
            else:  # absent from the data: evaluate as an empty node in its place
                node = _Node(name, node, "", 1, node.order)
        return node


# --- The parser --------------------------------------------------------------------------------

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


# --- Values and ODK's conversions --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Moment:
    """A date (today(), date()) or date-time (now(), date-time()) produced by a function."""

    value: date | datetime

    @property
    def days(self) -> int:
        day = self.value.date() if isinstance(self.value, datetime) else self.value
        return (day - _EPOCH).days


@dataclass(frozen=True, slots=True)
class _Nodes:
    nodes: tuple[_Node, ...]


_Atomic = str | float | bool | _Moment
_Value = _Atomic | _Nodes

_EPOCH = date(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
# ASCII digits only, as Java's number parsing (Python's \d and float() accept any script's digits).
_NUMBER_TEXT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)")
_DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_TIME_TEXT = re.compile(
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_CONTEXT_STEP = re.compile(r"([^\[\]/]+)(?:\[([0-9]{1,9})\])?")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _atomic(value: _Value) -> _Atomic:
    """A path's value: its one node's value, '' when it matches nothing."""
    if not isinstance(value, _Nodes):
        return value
    if not value.nodes:
        return ""
    if len(value.nodes) > 1:
        _fail(
            Reason.TYPE_ERROR,
            f"a path matches {len(value.nodes)} nodes where one value is expected "
            "(a field in a repeat, read from outside it: use indexed-repeat())",
        )
    return value.nodes[0].typed_value()


def _clock(match: re.Match[str]) -> time | None:
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    micro = int((match.group(4) or "0")[:6].ljust(6, "0"))
    offset, zone = match.group(5), None
    if offset == "Z":
        zone = UTC
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        if minutes >= 24 * 60:
            return None
        zone = timezone(timedelta(minutes=sign * minutes))
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second, micro, tzinfo=zone)


def _moment_of_text(text: str) -> _Moment | None:
    """An ISO date or date-time, as ODK writes them; None when the text is neither."""
    day_text, sep, clock_text = text.strip().partition("T")
    day_match = _DATE_TEXT.fullmatch(day_text)
    if day_match is None:
        return None
    try:
        day = date(int(day_match.group(1)), int(day_match.group(2)), int(day_match.group(3)))
    except ValueError:
        return None
    if not sep:
        return _Moment(day)
    clock_match = _TIME_TEXT.fullmatch(clock_text)
    clock = _clock(clock_match) if clock_match else None
    return _Moment(datetime.combine(day, clock)) if clock else None


def _number(value: _Value) -> float:
    v = _atomic(value)
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, _Moment):
        return float(v.days)
    text = v.strip()
    if _NUMBER_TEXT.fullmatch(text):
        return float(text)
    if "," in text and _NUMBER_TEXT.fullmatch(text.replace(",", ".")):
        _fail(Reason.TYPE_ERROR, f"{text[:40]!r}: a decimal comma reads differently in Collect and Enketo")
    moment = _moment_of_text(text)
    if moment is not None:
        return float(moment.days)
    if _TIME_TEXT.fullmatch(text):
        _fail(Reason.TYPE_ERROR, "times compare differently across ODK clients: use decimal-time()")
    return math.nan


def _boolean(value: _Value) -> bool:
    v = _atomic(value)
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return abs(v) > 1e-12
    if isinstance(v, _Moment):
        return True
    return v != ""


def _text_of_number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if abs(x) < 1e-12:
        return "0"
    if x == int(x):
        return str(int(x))
    return format(Decimal(repr(x)), "f")


def _text(value: _Value) -> str:
    v = _atomic(value)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return _text_of_number(v)
    if isinstance(v, _Moment):
        if isinstance(v.value, datetime):
            _fail(Reason.TYPE_ERROR, "the text of a date-time differs across ODK clients: use format-date()")
        return v.value.isoformat()
    return v


def _days_or_none(value: _Atomic) -> int | None:
    if isinstance(value, _Moment):
        return value.days
    if isinstance(value, str):
        moment = _moment_of_text(value)
        return moment.days if moment else None
    return None


def _equal(a: _Atomic, b: _Atomic) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return _boolean(a) == _boolean(b)
    if _is_number(a) or _is_number(b):
        return abs(_number(a) - _number(b)) < 1e-12
    if isinstance(a, _Moment) or isinstance(b, _Moment):
        days_a, days_b = _days_or_none(a), _days_or_none(b)
        if days_a is not None and days_b is not None:
            return days_a == days_b
    return _text(a) == _text(b)


def _arithmetic(operator: str, a: float, b: float) -> float:
    """IEEE arithmetic, as Java's: division by zero is infinite or NaN, never an error."""
    if operator == "+":
        return a + b
    if operator == "-":
        return a - b
    if operator == "*":
        return a * b
    if operator == "div":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
        return a / b
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or b == 0:
        return math.nan
    return math.fmod(a, b)  # the sign of the dividend, as Java's %


# --- Evaluation --------------------------------------------------------------------------------

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {"<": lt, "<=": le, ">": gt, ">=": ge}


@dataclass(frozen=True, slots=True)
class _Focus:
    node: _Node
    position: int | None = None  # inside a predicate: the candidate's position and the set's size
    size: int | None = None


@dataclass
class _Context:
    document: _Node
    origin: _Node  # the node the rule is on: current(), and the repeat instances paths resolve to
    today: date
    now: datetime
    steps_left: int = MAX_STEPS

    def spend(self, steps: int) -> None:
        self.steps_left -= steps
        if self.steps_left < 0:
            _fail(Reason.TOO_COMPLEX, f"more than {MAX_STEPS} evaluation steps")

    def pins(self, steps: Sequence[_Step]) -> dict[int, int]:
        """ODK's contextualisation: which steps of an absolute path stay in the origin's instances."""
        chain: list[_Node] = []
        node: _Node | None = self.origin
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()  # document, root, ..., origin
        pins: dict[int, int] = {}
        for i, step in enumerate(steps):
            if i + 1 >= len(chain) or step.name != chain[i + 1].name:
                break
            if not step.predicates:
                pins[i] = chain[i + 1].index
        return pins


def _eval(expr: _Expr, focus: _Focus, ctx: _Context) -> _Value:
    ctx.spend(1)
    if isinstance(expr, _Literal):
        return expr.value
    if isinstance(expr, _Chain):
        return _eval_chain(expr, focus, ctx)
    if isinstance(expr, _Negate):
        return -_number(_eval(expr.operand, focus, ctx))
    if isinstance(expr, _Call):
        return _eval_call(expr, focus, ctx)
    if isinstance(expr, _Path):
        return _Nodes(_eval_path(expr, focus, ctx, {}))
    if isinstance(expr, _Filter):
        nodes = _nodes_of(_eval(expr.base, focus, ctx), "a filter [...]")
        for predicate in expr.predicates:
            nodes = _filter(nodes, predicate, ctx)
        return _Nodes(nodes)
    found: dict[int, _Node] = {}
    for part in expr.parts:
        found.update((id(n), n) for n in _nodes_of(_eval(part, focus, ctx), "a union (|)"))
    return _Nodes(tuple(sorted(found.values(), key=lambda n: n.order)))


def _nodes_of(value: _Value, where: str) -> tuple[_Node, ...]:
    if not isinstance(value, _Nodes):
        _fail(Reason.TYPE_ERROR, f"{where} needs a path, not a value")
    return value.nodes


def _eval_chain(expr: _Chain, focus: _Focus, ctx: _Context) -> _Value:
    operator = expr.rest[0][0]
    if operator in ("or", "and"):
        decisive = operator == "or"  # the operand value that settles the whole chain
        for operand in (expr.first, *(e for _, e in expr.rest)):
            if _boolean(_eval(operand, focus, ctx)) == decisive:
                return decisive
        return not decisive
    result: _Value = _eval(expr.first, focus, ctx)
    for operator, operand in expr.rest:
        right = _eval(operand, focus, ctx)
        if operator in ("=", "!="):
            result = _equal(_atomic(result), _atomic(right)) == (operator == "=")
        elif operator in _COMPARISONS:
            result = _COMPARISONS[operator](_number(result), _number(right))
        else:
            result = _arithmetic(operator, _number(result), _number(right))
    return result


def _eval_path(path: _Path, focus: _Focus, ctx: _Context, pins: dict[int, int]) -> tuple[_Node, ...]:
    nodes: tuple[_Node, ...]
    if path.base is not None:
        nodes = _nodes_of(_eval(path.base, focus, ctx), "a path step after (...)")
    elif path.absolute:
        nodes = (ctx.document,)
        pins = {**ctx.pins(path.steps), **pins}
    else:
        nodes = (focus.node,)
    for i, step in enumerate(path.steps):
        found: dict[int, _Node] = {}
        for node in nodes:
            if step.name == ".":
                candidates = [node]
            elif step.name == "..":
                candidates = [node.parent] if node.parent is not None else []
            elif step.name == "*":
                candidates = node.children
            else:
                candidates = node.named(step.name)
            if i in pins:  # only named steps are pinned; named() lists them by index
                candidates = candidates[pins[i] - 1 : pins[i]]
            ctx.spend(1 + len(candidates))
            for predicate in step.predicates:
                candidates = list(_filter(tuple(candidates), predicate, ctx))
            found.update((id(c), c) for c in candidates)
        nodes = tuple(found.values())
    return nodes


def _filter(nodes: tuple[_Node, ...], predicate: _Expr, ctx: _Context) -> tuple[_Node, ...]:
    kept = []
    for position, node in enumerate(nodes, 1):
        value = _eval(predicate, _Focus(node, position, len(nodes)), ctx)
        keep = value == position if _is_number(value) else _boolean(value)  # [2] means position 2
        if keep:
            kept.append(node)
    return tuple(kept)


# --- Functions ---------------------------------------------------------------------------------

_Impl = Callable[[list[_Value], _Focus, _Context], _Value]


def _eval_call(call: _Call, focus: _Focus, ctx: _Context) -> _Value:
    args = call.args
    if call.name == "if":
        return _eval(args[1] if _boolean(_eval(args[0], focus, ctx)) else args[2], focus, ctx)
    if call.name == "coalesce":
        first = _atomic(_eval(args[0], focus, ctx))
        empty = first == "" or (_is_number(first) and math.isnan(first))
        return _eval(args[1], focus, ctx) if empty else first
    if call.name == "indexed-repeat":
        return _indexed_repeat(args, focus, ctx)
    return _FUNCTIONS[call.name][2]([_eval(a, focus, ctx) for a in args], focus, ctx)


def _indexed_repeat(args: tuple[_Expr, ...], focus: _Focus, ctx: _Context) -> _Value:
    target = args[0]
    if not (isinstance(target, _Path) and target.absolute and target.base is None):
        _fail(Reason.UNSUPPORTED_SYNTAX, "indexed-repeat() needs an absolute path as its first argument")
    pins: dict[int, int] = {}
    for group, index in zip(args[1::2], args[2::2], strict=True):
        if not (
            isinstance(group, _Path)
            and group.absolute
            and group.base is None
            and [s.name for s in group.steps] == [s.name for s in target.steps[: len(group.steps)]]
            and 0 < len(group.steps) < len(target.steps)
        ):
            _fail(
                Reason.TYPE_ERROR,
                "indexed-repeat(): each repeat must be an absolute path enclosing the field",
            )
        pins[len(group.steps) - 1] = max(_java_int(_number(_eval(index, focus, ctx))), 1)
    return _Nodes(_eval_path(target, focus, ctx, pins))


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


def _context_or(args: list[_Value], focus: _Focus) -> _Value:
    return args[0] if args else _Nodes((focus.node,))


def _single_nodeset_or_values(args: list[_Value]) -> list[_Value]:
    """ODK lets concat(), join(), min() and max() take the nodes of one path as their values."""
    if len(args) == 1 and isinstance(args[0], _Nodes):
        return [_Nodes((n,)) for n in args[0].nodes]
    return args


def _bounded(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        _fail(Reason.TOO_COMPLEX, f"a text longer than {MAX_TEXT_CHARS} characters")
    return text


def _join(separator: str, values: list[_Value]) -> str:
    return _bounded(separator.join(_text(v) for v in values))


def _numbers(values: list[_Value]) -> list[float]:
    """The values as numbers, leaving out empty and non-numeric ones, as Collect does."""
    return [n for n in (_number(v) for v in values) if not math.isnan(n)]


def _max(args: list[_Value], focus: _Focus, ctx: _Context) -> float:
    numbers = _numbers(_single_nodeset_or_values(args))
    return max(numbers) if numbers else math.nan


def _min(args: list[_Value], focus: _Focus, ctx: _Context) -> float:
    numbers = _numbers(_single_nodeset_or_values(args))
    return min(numbers) if numbers else math.nan


def _each_node(value: _Value, where: str) -> list[_Value]:
    return [_Nodes((n,)) for n in _nodes_of(value, where)]


def _count_non_empty(args: list[_Value], focus: _Focus, ctx: _Context) -> float:
    return float(sum(1 for node in _each_node(args[0], "count-non-empty()") if _text(node) != ""))


def _java_int(x: float) -> int:
    """Java's (int) cast, which Collect applies to indexes: NaN is 0, the rest saturates."""
    return 0 if math.isnan(x) else int(max(min(x, 2.0**31 - 1), -(2.0**31)))


def _integer(x: float) -> float:
    if math.isnan(x) or math.isinf(x) or abs(x) >= 2.0**63:
        return x
    return float(math.trunc(x))


def _round(args: list[_Value], focus: _Focus, ctx: _Context) -> float:
    x = _number(args[0])
    places = _java_int(_number(args[1])) if len(args) > 1 else 0
    if math.isnan(x) or math.isinf(x):
        return x
    if abs(places) > 30:
        return math.nan
    # XPath rounds halves up (towards +infinity), as Collect does with BigDecimal.
    mode = ROUND_HALF_UP if x >= 0 else ROUND_HALF_DOWN
    exact = Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=mode, context=Context(prec=400))
    return float(exact)


def _xpath_round(x: float) -> float:
    return x if math.isnan(x) or math.isinf(x) else math.floor(x + 0.5)


def _substr(args: list[_Value], focus: _Focus, ctx: _Context) -> str:
    """ODK's substr(text, start, end): 0-based, end exclusive, negative counts from the end."""
    text = _text(args[0])
    start = _java_int(_number(args[1]))
    end = _java_int(_number(args[2])) if len(args) > 2 else len(text)
    start, end = (start + len(text) if start < 0 else start), (end + len(text) if end < 0 else end)
    start, end = min(max(start, 0), len(text)), min(max(end, 0), len(text))
    return text[start:end] if start <= end else ""


def _substring(args: list[_Value], focus: _Focus, ctx: _Context) -> str:
    """XPath 1.0 substring(text, start, length): 1-based, rounded positions."""
    text = _text(args[0])
    first = _xpath_round(_number(args[1]))
    stop = first + _xpath_round(_number(args[2])) if len(args) > 2 else math.inf
    if math.isnan(first) or math.isnan(stop):
        return ""
    low = max(first, 1.0)
    high = min(stop, len(text) + 1.0)
    return text[int(low) - 1 : int(high) - 1] if low < high else ""


def _translate(args: list[_Value], focus: _Focus, ctx: _Context) -> str:
    text, source, target = (_text(a) for a in args)
    table: dict[int, int | None] = {}
    for i, char in enumerate(source):
        table.setdefault(ord(char), ord(target[i]) if i < len(target) else None)
    return text.translate(table)


def _selected(args: list[_Value], focus: _Focus, ctx: _Context) -> bool:
    wanted = _atomic(args[1])
    if not isinstance(wanted, str):
        _fail(Reason.TYPE_ERROR, "selected(): the choice must be text, in quotes ('1')")
    return wanted.strip() in _text(args[0]).split()


def _selected_at(args: list[_Value], focus: _Focus, ctx: _Context) -> str:
    choices = _text(args[0]).split()
    index = _java_int(_number(args[1]))
    return choices[index] if 0 <= index < len(choices) else ""


def _position(args: list[_Value], focus: _Focus, ctx: _Context) -> float:
    if args:
        nodes = _nodes_of(args[0], "position()")
        if not nodes:
            _fail(Reason.TYPE_ERROR, "position(): the path matches no node")
        return float(nodes[0].index)
    return float(focus.position if focus.position is not None else focus.node.index)


def _date(args: list[_Value], focus: _Focus, ctx: _Context, keep_time: bool = False) -> _Value:
    """date() and date-time(): '' and NaN pass through (ODK's empty date); bad text is an error."""
    v = _atomic(args[0])
    if isinstance(v, _Moment):
        if keep_time or not isinstance(v.value, datetime):
            return v
        return _Moment(v.value.date())
    if isinstance(v, str):
        if v == "":
            return ""
        moment = _moment_of_text(v)
        if moment is None:
            _fail(Reason.TYPE_ERROR, f"{v[:40]!r} is not a date")
        return _date([moment], focus, ctx, keep_time)
    if isinstance(v, bool):
        _fail(Reason.TYPE_ERROR, "a boolean is not a date")
    if math.isnan(v):
        return v
    try:
        if keep_time:
            return _Moment(datetime(1970, 1, 1) + timedelta(days=v))
        return _Moment(_EPOCH + timedelta(days=_integer(v)))
    except OverflowError:  # beyond year 9999, or infinite
        _fail(Reason.TYPE_ERROR, f"{_text_of_number(v)[:40]} days is out of range for a date")


def _decimal_date_time(args: list[_Value], focus: _Focus, ctx: _Context) -> _Value:
    """Fractional days since 1970-01-01T00:00Z; a date-time without an offset is taken as UTC."""
    v = _atomic(args[0])
    if _is_number(v):
        return v
    moment = _date([v], focus, ctx, keep_time=True)
    if not isinstance(moment, _Moment):
        return moment  # '' stays ''
    value = moment.value
    if not isinstance(value, datetime):
        return float((value - _EPOCH).days)
    instant = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (instant - _EPOCH_UTC).total_seconds() / 86400


def _day_fraction(clock: time) -> float:
    return (clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6) / 86400


def _decimal_time(args: list[_Value], focus: _Focus, ctx: _Context) -> _Value:
    """The fraction of the day on the value's own clock (a time's offset is the device's)."""
    v = _atomic(args[0])
    if _is_number(v):
        return v - math.floor(v) if math.isfinite(v) else math.nan
    match = _TIME_TEXT.fullmatch(v.strip()) if isinstance(v, str) else None
    if match is not None:
        clock = _clock(match)
        if clock is None:
            _fail(Reason.TYPE_ERROR, f"{v!s:.40} is not a time")
        return _day_fraction(clock)
    moment = _date([v], focus, ctx, keep_time=True)
    if not isinstance(moment, _Moment):
        return moment
    return _day_fraction(moment.value.time()) if isinstance(moment.value, datetime) else 0.0


def _format_date(args: list[_Value], focus: _Focus, ctx: _Context) -> str:
    moment = _date(args[:1], focus, ctx, keep_time=True)
    if not isinstance(moment, _Moment):
        return ""
    value = moment.value
    wall = value if isinstance(value, datetime) else datetime.combine(value, time())
    fields = {
        "Y": f"{wall.year:04d}",
        "y": f"{wall.year % 100:02d}",
        "m": f"{wall.month:02d}",
        "n": str(wall.month),
        "b": _MONTHS[wall.month - 1],
        "d": f"{wall.day:02d}",
        "e": str(wall.day),
        "H": f"{wall.hour:02d}",
        "h": str(wall.hour),
        "M": f"{wall.minute:02d}",
        "S": f"{wall.second:02d}",
        "3": f"{wall.microsecond // 1000:03d}",
        "a": _WEEKDAYS[wall.weekday()],
    }
    pattern, out, i = _text(args[1]), [], 0
    while i < len(pattern):
        if pattern[i] != "%":
            out.append(pattern[i])
        elif i + 1 < len(pattern) and pattern[i + 1] in fields:
            out.append(fields[pattern[i + 1]])
            i += 1
        else:
            _fail(Reason.UNSUPPORTED_SYNTAX, f"format-date(): unsupported pattern {pattern[i : i + 2]!r}")
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> tuple[Any, str]:
    """The compiled RE2 pattern, or why it cannot be: RE2 has no backreferences or lookaround."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 1 << 20
    try:
        return re2.compile(pattern, options), ""
    except re2.error as exc:
        return None, str(exc)[:200]


def _regex_matches(args: list[_Value], focus: _Focus, ctx: _Context) -> bool:
    subject, pattern = _text(args[0]), _text(args[1])
    if len(pattern) > MAX_REGEX_PATTERN_CHARS:
        _fail(Reason.TOO_COMPLEX, f"regex(): a pattern longer than {MAX_REGEX_PATTERN_CHARS} characters")
    compiled, error = _regex(pattern)
    if compiled is None:
        _fail(Reason.UNSUPPORTED_SYNTAX, f"regex(): pattern not supported: {error}")
    if len(subject) * compiled.programsize > MAX_REGEX_WORK:
        _fail(Reason.TOO_COMPLEX, "regex(): the value is too long for this pattern")
    return compiled.fullmatch(subject) is not None


def _math(fn: Callable[..., float]) -> _Impl:
    """A Java Math function: domain errors give NaN, overflow gives infinity."""

    def impl(args: list[_Value], focus: _Focus, ctx: _Context) -> float:
        numbers = [_number(a) for a in args]
        try:
            return fn(*numbers)
        except ValueError:
            return math.nan
        except OverflowError:
            return math.inf

    return impl


_FUNCTIONS: dict[str, tuple[int, int | None, _Impl]] = {
    "true": (0, 0, lambda a, f, c: True),
    "false": (0, 0, lambda a, f, c: False),
    "not": (1, 1, lambda a, f, c: not _boolean(a[0])),
    "boolean": (1, 1, lambda a, f, c: _boolean(a[0])),
    "boolean-from-string": (1, 1, lambda a, f, c: _text(a[0]).lower() == "true" or _text(a[0]) == "1"),
    "number": (0, 1, lambda a, f, c: _number(_context_or(a, f))),
    "int": (1, 1, lambda a, f, c: _integer(_number(a[0]))),
    "round": (1, 2, _round),
    "floor": (1, 1, _math(lambda x: float(math.floor(x)) if math.isfinite(x) else x)),
    "ceiling": (1, 1, _math(lambda x: float(math.ceil(x)) if math.isfinite(x) else x)),
    "abs": (1, 1, _math(abs)),
    "pow": (2, 2, _math(math.pow)),
    "sqrt": (1, 1, _math(math.sqrt)),
    "exp": (1, 1, _math(math.exp)),
    "exp10": (1, 1, _math(lambda x: math.pow(10.0, x))),
    "log": (1, 1, _math(math.log)),
    "log10": (1, 1, _math(math.log10)),
    "pi": (0, 0, lambda a, f, c: math.pi),
    "sin": (1, 1, _math(math.sin)),
    "cos": (1, 1, _math(math.cos)),
    "tan": (1, 1, _math(math.tan)),
    "asin": (1, 1, _math(math.asin)),
    "acos": (1, 1, _math(math.acos)),
    "atan": (1, 1, _math(math.atan)),
    "atan2": (2, 2, _math(math.atan2)),
    "string": (0, 1, lambda a, f, c: _text(_context_or(a, f))),
    "string-length": (0, 1, lambda a, f, c: float(len(_text(_context_or(a, f))))),
    "normalize-space": (0, 1, lambda a, f, c: " ".join(_text(_context_or(a, f)).split())),
    "concat": (0, None, lambda a, f, c: _join("", _single_nodeset_or_values(a))),
    "join": (1, None, lambda a, f, c: _join(_text(a[0]), _single_nodeset_or_values(a[1:]))),
    "contains": (2, 2, lambda a, f, c: _text(a[1]) in _text(a[0])),
    "starts-with": (2, 2, lambda a, f, c: _text(a[0]).startswith(_text(a[1]))),
    "ends-with": (2, 2, lambda a, f, c: _text(a[0]).endswith(_text(a[1]))),
    "substring-before": (
        2,
        2,
        lambda a, f, c: _text(a[0]).split(_text(a[1]), 1)[0] if _text(a[1]) in _text(a[0]) else "",
    ),
    "substring-after": (2, 2, lambda a, f, c: _text(a[0]).partition(_text(a[1]))[2]),
    "translate": (3, 3, _translate),
    "substr": (2, 3, _substr),
    "substring": (2, 3, _substring),
    "selected": (2, 2, _selected),
    "is-selected": (2, 2, _selected),
    "count-selected": (1, 1, lambda a, f, c: float(len(_text(a[0]).split()))),
    "selected-at": (2, 2, _selected_at),
    "regex": (2, 2, _regex_matches),
    "count": (1, 1, lambda a, f, c: float(len(_nodes_of(a[0], "count()")))),
    "count-non-empty": (1, 1, _count_non_empty),
    "sum": (1, 1, lambda a, f, c: math.fsum(_numbers(_each_node(a[0], "sum()")))),
    "max": (1, None, _max),
    "min": (1, None, _min),
    "position": (0, 1, _position),
    "last": (0, 0, lambda a, f, c: float(f.size if f.size is not None else 1)),
    "current": (0, 0, lambda a, f, c: _Nodes((c.origin,))),
    "today": (0, 0, lambda a, f, c: _Moment(c.today)),
    "now": (0, 0, lambda a, f, c: _Moment(c.now)),
    "date": (1, 1, _date),
    "date-time": (1, 1, lambda a, f, c: _date(a, f, c, keep_time=True)),
    "decimal-date-time": (1, 1, _decimal_date_time),
    "decimal-time": (1, 1, _decimal_time),
    "format-date": (2, 2, _format_date),
    "format-date-time": (2, 2, _format_date),
}

_LAZY_ARITY: dict[str, tuple[int, int | None]] = {"if": (3, 3), "coalesce": (2, 2), "indexed-repeat": (3, 11)}

_UNSUPPORTED = {
    "instance": "secondary instances (choice lists, CSV, entities) are not available here",
    "pulldata": "external data files are not available here",
    "jr:choice-name": "choice labels are not available here",
    "jr:itext": "form translations are not available here",
    "uuid": "its value is different on every evaluation",
    "random": "its value is different on every evaluation",
    "randomize": "its value is different on every evaluation",
    "once": "only meaningful while the form is being filled",
    "version": "the form version is not available here",
    "property": "device properties are not available here",
    "area": "geographic functions are not supported",
    "enclosed-area": "geographic functions are not supported",
    "distance": "geographic functions are not supported",
    "digest": "not supported",
    "base64-decode": "not supported",
    "checklist": "not supported",
    "weighted-checklist": "not supported",
}


# --- The entry point ---------------------------------------------------------------------------


def evaluate_boolean(
    expression: str, instance: Instance, context_path: str, today: date, now: datetime
) -> bool | NotEvaluated:
    """Evaluate a bind's rule on a submission, at `context_path`, as ODK Collect would.

    `context_path` is the field's path as the schema writes it, without the root element
    (`/household/member/age`), with the repeat instance where there are several
    (`/household/member[2]/age`, as `Instance.contexts` gives them). `today` and `now` are
    what `today()` and `now()` return.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        return NotEvaluated(Reason.TOO_COMPLEX, f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    if isinstance(today, datetime):
        today = today.date()
    try:
        compiled = _compile(expression)
        if isinstance(compiled, NotEvaluated):
            return compiled
        origin = instance._node_at(context_path)
        document = instance._document
        return _boolean(_eval(compiled, _Focus(origin), _Context(document, origin, today, now)))
    except _Unevaluable as exc:
        return NotEvaluated(exc.reason, exc.detail)
    except RecursionError:
        return NotEvaluated(Reason.TOO_COMPLEX, "nested too deeply to evaluate")
    except Exception as exc:  # noqa: BLE001 - a hostile form must never turn into a server error
        return NotEvaluated(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {str(exc)[:200]}")
