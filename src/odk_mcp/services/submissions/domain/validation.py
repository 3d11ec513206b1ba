"""Findings for a received submission: `required` where relevant, `constraint` where answered.

Values are never refused for failing these rules (a phone may run another form version, or a
rule may have been bypassed); the outcome is recorded with the submission. A rule the XPath
evaluator cannot evaluate is recorded as `not-evaluated` with its reason, never guessed. The
total time spent per submission is capped, since rules come from uploaded forms.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from odk_mcp.services.forms import Field, FormSchema
from odk_mcp.services.submissions.domain.xpath import (
    Instance,
    NotEvaluated,
    evaluate_boolean,
    is_answered,
)

ANSWERED = "string-length(.) > 0"  # what `is_answered` computes directly
NEVER = ("", "false()", "false")


def _ancestors(path: str, fields: dict[str, Field]) -> list[Field]:
    parts = path.strip("/").split("/")
    return [fields[p] for p in ("/" + "/".join(parts[:i]) for i in range(1, len(parts))) if p in fields]


def _context_of(ancestor: Field, context: str) -> str:
    """The ancestor's own context path inside a field's context (`/m[2]/x` → `/m[2]`)."""
    depth = ancestor.path.count("/")
    return "/" + "/".join(context.strip("/").split("/")[:depth])


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
    fields = {f.path: f for f in schema.fields}
    ruled = [
        f for f in schema.fields if (f.required or "").strip() not in NEVER or (f.constraint or "").strip()
    ]
    if not ruled:
        return []
    instance = Instance.from_dict(data, root=root_name)
    repeats = {f.path for f in schema.fields if f.type == "repeat"}
    deadline = time.monotonic() + budget_seconds
    findings: list[dict[str, str]] = []

    def check(expression: str, context: str) -> bool | NotEvaluated:
        return evaluate_boolean(expression, instance, context, today, now)

    for field in ruled:
        for context in instance.contexts(field.path, repeats):
            if time.monotonic() > deadline:
                findings.append(
                    _finding(field, context, "budget", "not-evaluated", "", "time budget exhausted")
                )
                return findings
            relevant: bool | NotEvaluated = True
            for owner in [*_ancestors(field.path, fields), field]:
                if owner.relevant:
                    owner_context = context if owner is field else _context_of(owner, context)
                    relevant = check(owner.relevant, owner_context)
                    if relevant is not True:
                        break
            if relevant is False:
                continue
            answered = is_answered(instance, context)  # check(ANSWERED, context), faster
            required = (field.required or "").strip()
            if required not in NEVER and answered is False:
                if isinstance(relevant, NotEvaluated):
                    findings.append(
                        _finding(field, context, "required", "not-evaluated", required, relevant.detail)
                    )
                else:
                    needed = check(required, context)
                    if needed is True:
                        findings.append(_finding(field, context, "required", "violated", required))
                    elif isinstance(needed, NotEvaluated):
                        findings.append(
                            _finding(field, context, "required", "not-evaluated", required, needed.detail)
                        )
            constraint = (field.constraint or "").strip()
            if constraint and answered is True:
                ok = check(constraint, context)
                if ok is False:
                    findings.append(_finding(field, context, "constraint", "violated", constraint))
                elif isinstance(ok, NotEvaluated):
                    findings.append(
                        _finding(field, context, "constraint", "not-evaluated", constraint, ok.detail)
                    )
    return findings
