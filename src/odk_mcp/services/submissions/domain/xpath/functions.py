"""The ODK XPath function library (eagerly evaluated arguments), with arities."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Any

import re2

from odk_mcp.services.submissions.domain.xpath.context import _Context, _Focus
from odk_mcp.services.submissions.domain.xpath.limits import (
    MAX_REGEX_PATTERN_CHARS,
    MAX_REGEX_WORK,
    MAX_TEXT_CHARS,
    Reason,
    _fail,
)
from odk_mcp.services.submissions.domain.xpath.values import (
    _EPOCH,
    _EPOCH_UTC,
    _MONTHS,
    _TIME_TEXT,
    _WEEKDAYS,
    _atomic,
    _boolean,
    _clock,
    _is_number,
    _Moment,
    _moment_of_text,
    _Nodes,
    _nodes_of,
    _number,
    _text,
    _text_of_number,
    _Value,
)

_Impl = Callable[[list[_Value], _Focus, _Context], _Value]


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
