"""Straight-lining: the same answer to every question of a battery that shares a choice list.

A battery is a set of at least `straightline_min_questions` single-choice questions with the
same choices (the same XLSForm list) of at least three options; yes/no lists are left out
because answering "no" to every item is often honest.
"""

from __future__ import annotations

from collections import defaultdict

import polars as pl

from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, FieldIndex, Kind
from odk_mcp.services.analytics.domain.quality.answers import is_metadata
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig, Severity
from odk_mcp.services.forms import Field


def batteries(fields: FieldIndex, frame: pl.DataFrame, min_questions: int) -> list[list[Field]]:
    groups: dict[tuple[str, ...], list[Field]] = defaultdict(list)
    for f in fields.of_kind(Kind.CATEGORICAL):
        if len(f.choices) >= 3 and f.path in frame.columns and not is_metadata(f):
            key = (f.choice_list,) if f.choice_list else tuple(c.value for c in f.choices)
            groups[key].append(f)
    return [g for g in groups.values() if len(g) >= min_questions]


def straightlining_findings(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> list[Finding]:
    k = config.straightline_min_questions
    findings: list[Finding] = []
    for battery in batteries(fields, frame, k):
        paths = [f.path for f in battery]
        # One answer throughout = the smallest and the largest answered value are equal.
        answers = [pl.col(p).cast(pl.String) for p in paths]
        hits = frame.select(
            pl.col(SUBMISSION_ID),
            pl.sum_horizontal(a.is_not_null() for a in answers).alias("n"),
            pl.min_horizontal(answers).alias("value"),
            pl.max_horizontal(answers).alias("top"),
        ).filter((pl.col("n") >= k) & (pl.col("value") == pl.col("top")))
        for sid, n, value, _ in hits.iter_rows():
            findings.append(
                Finding(
                    "straightlining",
                    Severity.MEDIUM,
                    f"The same answer {value!r} to all {n} questions of a battery sharing one choice list.",
                    {"questions": paths, "value": value, "answered": n},
                    submission_id=sid,
                    field=paths[0],
                )
            )
    return findings
