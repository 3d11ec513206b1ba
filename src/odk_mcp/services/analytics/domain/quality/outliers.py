"""Numeric outliers: values both robust methods call extreme.

A value is flagged when its robust z-score 0.6745·(x - median)/MAD exceeds `outlier_z`
(Iglewicz & Hoaglin's 3.5) AND it lies beyond Tukey's far-out fences (Q1 - k·IQR, Q3 + k·IQR
with k = `outlier_iqr_k`, 3 by default). Requiring both keeps honest tails of skewed answers
(incomes, land sizes) from being flagged while catching typing slips (age 250, 10x prices).
When the MAD is 0 (most answers identical) the fences decide alone. Strictly positive,
right-skewed answers (Bowley skewness above 0.1: incomes, areas, prices) are judged on the
log scale, where their honest long tail is not extreme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, FieldIndex, Kind
from odk_mcp.services.analytics.domain.numeric import as_float
from odk_mcp.services.analytics.domain.quality.answers import is_metadata
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig, Severity

MIN_ANSWERS = 20


@dataclass(frozen=True)
class Spread:
    """Where a numeric question's typical answers lie (on the log scale if `log_scale`)."""

    median: float
    mad: float
    low: float
    high: float
    log_scale: bool


def spreads(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> dict[str, Spread]:
    """The spread of every numeric answer question with enough answers to judge."""
    out: dict[str, Spread] = {}
    for field in fields.of_kind(Kind.NUMERIC):
        if field.path not in frame.columns or is_metadata(field):
            continue
        values = frame.select(as_float(field.path).fill_nan(None).alias("x")).drop_nulls("x")
        if values.height < MIN_ANSWERS:
            continue
        log_scale = _skewed_positive(values)
        x = pl.col("x").log() if log_scale else pl.col("x")
        median, mad, q1, q3 = values.select(
            x.median().alias("median"),
            (x - x.median()).abs().median().alias("mad"),
            x.quantile(0.25, "linear").alias("q1"),
            x.quantile(0.75, "linear").alias("q3"),
        ).row(0)
        iqr = q3 - q1
        if iqr == 0 and mad == 0:
            continue
        k = config.outlier_iqr_k
        out[field.path] = Spread(median, mad, q1 - k * iqr, q3 + k * iqr, log_scale)
    return out


def outlier_findings(
    frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig, known: dict[str, Spread] | None = None
) -> list[Finding]:
    """Outliers against the frame's own spreads, or against `known` ones (incremental checks)."""
    findings: list[Finding] = []
    for path, spread in (known if known is not None else spreads(frame, fields, config)).items():
        if path not in frame.columns:
            continue
        field = fields.get(path)
        values = frame.select(pl.col(SUBMISSION_ID), as_float(path).fill_nan(None).alias("x")).drop_nulls("x")
        x = pl.col("x").log() if spread.log_scale else pl.col("x")
        outside = (x < spread.low) | (x > spread.high)
        mad = spread.mad
        robust = (0.6745 * (x - spread.median) / mad) if mad > 0 else pl.lit(None, pl.Float64)
        flagged = values.with_columns(robust.alias("z")).filter(
            outside & ((pl.col("z").abs() > config.outlier_z) | (mad == 0))
        )
        typical = math.exp(spread.median) if spread.log_scale else spread.median
        for sid, value, z in flagged.iter_rows():
            severity = Severity.HIGH if z is None or abs(z) > 3 * config.outlier_z else Severity.MEDIUM
            findings.append(
                Finding(
                    "outlier",
                    severity,
                    f"{field.name} = {value:g} is far from the typical {typical:g}"
                    + (f" (robust z {z:.1f})." if z is not None else " (outside the IQR fences)."),
                    {
                        "value": value,
                        "scale": "log" if spread.log_scale else "linear",
                        "median": spread.median,
                        "mad": mad,
                        "robust_z": z,
                        "fences": [spread.low, spread.high],
                    },
                    submission_id=sid,
                    field=path,
                )
            )
    return findings


def _skewed_positive(values: pl.DataFrame) -> bool:
    x = pl.col("x")
    low, q1, med, q3 = values.select(
        x.min().alias("a"),
        x.quantile(0.25, "linear").alias("b"),
        x.median().alias("c"),
        x.quantile(0.75, "linear").alias("d"),
    ).row(0)
    if low <= 0 or q3 == q1:
        return False
    return bool((q3 + q1 - 2 * med) / (q3 - q1) > 0.1)
