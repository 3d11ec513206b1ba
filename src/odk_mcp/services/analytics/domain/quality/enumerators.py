"""The enumerator quality table, and enumerators whose work stands out from their peers'.

Per enumerator: interviews, flagged interviews and findings per 100 interviews, median
duration and the share of speeding interviews. Two enumerator-level rules, each needing at
least five enumerators with `enumerator_min_submissions` interviews to compare:
- `enumerator_flag_rate`: findings per 100 interviews with a robust z (against the other
  enumerators' median and MAD) above `enumerator_z`;
- `enumerator_answer_pattern`: answers distributed unlike everyone else's (mean total
  variation distance, over the single-choice questions, between the enumerator's answers and
  the other enumerators' pooled answers) with a robust z above `enumerator_z` — the classic
  signature of interviews filled in without an interviewee.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, SUBMITTER, FieldIndex, Kind
from odk_mcp.services.analytics.domain.quality.answers import is_metadata
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig, Severity

MIN_ENUMERATORS = 5


@dataclass(frozen=True)
class EnumeratorRow:
    enumerator: str
    interviews: int
    flagged_interviews: int
    findings_per_100: float
    median_duration_seconds: float | None
    speeding_share: float | None
    answer_divergence: float | None


def enumerator_table(
    frame: pl.DataFrame, fields: FieldIndex, findings: list[Finding], durations: pl.Series | None
) -> list[EnumeratorRow]:
    who = frame.select(
        pl.col(SUBMISSION_ID), pl.col(SUBMITTER).cast(pl.String).fill_null("(unknown)").alias("e")
    )
    by_submission = Counter(f.submission_id for f in findings if f.submission_id is not None)
    speeding = {f.submission_id for f in findings if f.rule == "speeding"}
    flags = pl.DataFrame(
        {
            SUBMISSION_ID: list(by_submission),
            "findings": list(by_submission.values()),
            "speeding": [i in speeding for i in by_submission],
        },
        schema={SUBMISSION_ID: who.schema[SUBMISSION_ID], "findings": pl.Int64, "speeding": pl.Boolean},
    )
    data = (
        who.with_columns(
            durations.alias("d") if durations is not None else pl.lit(None, pl.Float64).alias("d")
        )
        .join(flags, on=SUBMISSION_ID, how="left", maintain_order="left")
        .with_columns(pl.col("findings").fill_null(0), pl.col("speeding").fill_null(False))
    )
    table = data.group_by("e").agg(
        pl.len().alias("n"),
        (pl.col("findings") > 0).sum().alias("flagged"),
        pl.col("findings").sum().alias("total"),
        pl.col("d").median().alias("median"),
        pl.col("speeding").filter(pl.col("d").is_not_null()).mean().alias("speeding"),
    )
    divergence = answer_divergence(frame, fields)
    rows = [
        EnumeratorRow(
            e, n, flagged, 100.0 * total / n, med, speed if durations is not None else None, divergence.get(e)
        )
        for e, n, flagged, total, med, speed in table.sort("e").iter_rows()
    ]
    return rows


def answer_divergence(frame: pl.DataFrame, fields: FieldIndex) -> dict[str, float]:
    """Mean total variation distance between each enumerator's and the others' answers."""
    questions = [
        f.path for f in fields.of_kind(Kind.CATEGORICAL) if f.path in frame.columns and not is_metadata(f)
    ]
    if not questions or SUBMITTER not in frame.columns:
        return {}
    distances: dict[str, list[float]] = {}
    enumerator = pl.col(SUBMITTER).cast(pl.String).fill_null("(unknown)")
    for path in questions:
        counts = (
            frame.select(enumerator.alias("e"), pl.col(path).cast(pl.String).alias("v"))
            .drop_nulls("v")
            .group_by("e", "v")
            .len()
            .pivot(on="v", index="e", values="len")
            .fill_null(0)
        )
        if counts.height < 2:
            continue
        matrix = counts.drop("e").to_numpy().astype(float)
        others = matrix.sum(axis=0)[None, :] - matrix
        own_share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        other_share = others / np.maximum(others.sum(axis=1, keepdims=True), 1)
        tvd = 0.5 * np.abs(own_share - other_share).sum(axis=1)
        for e, d in zip(counts["e"].to_list(), tvd, strict=True):
            distances.setdefault(e, []).append(float(d))
    return {e: float(np.mean(d)) for e, d in distances.items()}


def robust_z(values: np.ndarray) -> np.ndarray:
    median = np.median(values)
    mad = np.median(np.abs(values - median))
    if mad == 0:
        spread = np.mean(np.abs(values - median)) * 1.2533  # mean absolute deviation, scaled
        return (values - median) / spread if spread > 0 else np.zeros_like(values)
    return 0.6745 * (values - median) / mad  # type: ignore[no-any-return]


def enumerator_findings(table: list[EnumeratorRow], config: QualityConfig) -> list[Finding]:
    peers = [r for r in table if r.interviews >= config.enumerator_min_submissions]
    if len(peers) < MIN_ENUMERATORS:
        return []
    findings: list[Finding] = []
    checks = [
        ("enumerator_flag_rate", "findings per 100 interviews", [r.findings_per_100 for r in peers]),
        (
            "enumerator_answer_pattern",
            "answer divergence from other enumerators",
            [r.answer_divergence or 0.0 for r in peers],
        ),
    ]
    for rule, what, raw in checks:
        if not config.enabled(rule):
            continue
        values = np.array(raw, dtype=float)
        z = robust_z(values)
        median = float(np.median(values))
        for row, value, score in zip(peers, values, z, strict=True):
            if score > config.enumerator_z:
                findings.append(
                    Finding(
                        rule,
                        Severity.HIGH,
                        f"Enumerator {row.enumerator}: {what} {value:.2f} against a median of {median:.2f} "
                        f"(robust z {score:.1f}).",
                        {
                            "value": float(value),
                            "median": median,
                            "robust_z": float(score),
                            "interviews": row.interviews,
                        },
                        enumerator=row.enumerator,
                    )
                )
    return findings
