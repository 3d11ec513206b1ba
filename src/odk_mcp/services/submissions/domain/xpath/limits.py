"""Limits on untrusted expressions, and how an evaluation gives up (`NotEvaluated`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

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
