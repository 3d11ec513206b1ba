"""XPath values and ODK's conversions between text, numbers, booleans, dates and nodes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, TypeGuard

from odk_mcp.services.submissions.domain.xpath.limits import Reason, _fail

if TYPE_CHECKING:
    from odk_mcp.services.submissions.domain.xpath.instance import _Node


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


def _nodes_of(value: _Value, where: str) -> tuple[_Node, ...]:
    if not isinstance(value, _Nodes):
        _fail(Reason.TYPE_ERROR, f"{where} needs a path, not a value")
    return value.nodes
