"""Findings for a received submission: `required` where relevant, `constraint` where answered.

Values are never refused for failing these rules (a phone may run another form version, or a
rule may have been bypassed); the outcome is recorded with the submission. A rule the XPath
evaluator cannot evaluate is recorded as `not-evaluated` with its reason, never guessed. The
total time spent per submission is capped, since rules come from uploaded forms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from odk_mcp.services.forms import Field, FormSchema
from odk_mcp.services.submissions.domain.per_schema import derived
from odk_mcp.services.submissions.domain.xpath import (
    Instance,
    Node,
    NotEvaluated,
    evaluate_boolean,
    is_answered,
)

ANSWERED = "string-length(.) > 0"  # what `is_answered` computes directly
NEVER = ("", "false()", "false")


@dataclass(frozen=True)
class _Rule:
    """A field with a `required` or `constraint` rule, and the `relevant` expressions that
    decide whether it applies: (levels above the field, expression), outermost first, the
    field's own last (levels 0)."""

    field: Field
    required: str  # "" when never required
    constraint: str
    relevance: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class _Plan:
    rules: tuple[_Rule, ...]
    repeats: frozenset[str]


def _plan_of(schema: FormSchema) -> _Plan:
    fields = {f.path: f for f in schema.fields}
    rules = []
    for f in schema.fields:
        required = (f.required or "").strip()
        required = "" if required in NEVER else required
        constraint = (f.constraint or "").strip()
        if not (required or constraint):
            continue
        parts = f.path.strip("/").split("/")
        owners = [fields[p] for p in ("/" + "/".join(parts[:i]) for i in range(1, len(parts))) if p in fields]
        depth = f.path.count("/")
        relevance = tuple(
            (depth - owner.path.count("/"), owner.relevant) for owner in [*owners, f] if owner.relevant
        )
        rules.append(_Rule(f, required, constraint, relevance))
    return _Plan(tuple(rules), frozenset(f.path for f in schema.fields if f.type == "repeat"))


def _up(node: Node, levels: int) -> Node:
    for _ in range(levels):
        parent = node.parent
        if parent is None:
            break
        node = parent
    return node


def _finding(
    field: Field, context: str, rule: str, outcome: str, expression: str, reason: str = ""
) -> dict[str, str]:
    found = {
        "path": field.path,
        "context": context,
        "rule": rule,
        "outcome": outcome,
        "expression": expression,
    }
    if reason:
        found["reason"] = reason
    return found


def evaluate_rules(
    root_name: str,
    data: dict[str, Any],
    schema: FormSchema,
    today: date,
    now: datetime,
    budget_seconds: float = 1.0,
) -> list[dict[str, str]]:
    """Violations and not-evaluated rules of one submission (passes are not recorded)."""
    plan = derived(schema, "rules", _plan_of)
    if not plan.rules:
        return []
    instance = Instance.from_dict(data, root=root_name)
    deadline = time.monotonic() + budget_seconds
    findings: list[dict[str, str]] = []

    for rule in plan.rules:
        field, required, constraint = rule.field, rule.required, rule.constraint
        for context, node in instance.locate(field.path, plan.repeats):
            if time.monotonic() > deadline:
                findings.append(
                    _finding(field, context, "budget", "not-evaluated", "", "time budget exhausted")
                )
                return findings
            relevant: bool | NotEvaluated = True
            for levels, expression in rule.relevance:
                relevant = evaluate_boolean(expression, instance, _up(node, levels), today, now)
                if relevant is not True:
                    break
            if relevant is False:
                continue
            answered = is_answered(instance, node)  # evaluate_boolean(ANSWERED, …), faster
            if required and answered is False:
                if isinstance(relevant, NotEvaluated):
                    findings.append(
                        _finding(field, context, "required", "not-evaluated", required, relevant.detail)
                    )
                else:
                    needed = evaluate_boolean(required, instance, node, today, now)
                    if needed is True:
                        findings.append(_finding(field, context, "required", "violated", required))
                    elif isinstance(needed, NotEvaluated):
                        findings.append(
                            _finding(field, context, "required", "not-evaluated", required, needed.detail)
                        )
            if constraint and answered is True:
                ok = evaluate_boolean(constraint, instance, node, today, now)
                if ok is False:
                    findings.append(_finding(field, context, "constraint", "violated", constraint))
                elif isinstance(ok, NotEvaluated):
                    findings.append(
                        _finding(field, context, "constraint", "not-evaluated", constraint, ok.detail)
                    )
    return findings
