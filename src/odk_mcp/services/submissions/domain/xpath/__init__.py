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

Modules: `limits` (bounds, `NotEvaluated`), `instance` (the data tree), `syntax` (grammar and
compiled expressions), `values` (conversions), `context` (focus, origin, step budget),
`functions` (the function library), `evaluation` (the evaluator and `evaluate_boolean`). Names
with a leading underscore are private to this package; the surface is what `__all__` lists.
"""

from __future__ import annotations

from odk_mcp.services.submissions.domain.xpath.evaluation import evaluate_boolean, is_answered
from odk_mcp.services.submissions.domain.xpath.instance import Instance, Node
from odk_mcp.services.submissions.domain.xpath.limits import MAX_EXPRESSION_CHARS, NotEvaluated, Reason

__all__ = [
    "MAX_EXPRESSION_CHARS",
    "Instance",
    "Node",
    "NotEvaluated",
    "Reason",
    "evaluate_boolean",
    "is_answered",
]
