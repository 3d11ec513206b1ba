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

import polars as pl

from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, FieldIndex, Kind
from odk_mcp.services.analytics.domain.numeric import as_float
from odk_mcp.services.analytics.domain.quality.answers import is_metadata
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig, Severity

MIN_ANSWERS = 20


def outlier_findings(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> list[Finding]:
    findings: list[Finding] = []
    for field in fields.of_kind(Kind.NUMERIC):
        if field.path not in frame.columns or is_metadata(field):
            continue
        values = frame.select(
            pl.col(SUBMISSION_ID), as_float(field.path).fill_nan(None).alias("x")
        ).drop_nulls("x")
        if values.height < MIN_ANSWERS:
            continue
        log_scale = _skewed_positive(values)
        x = pl.col("x").log() if log_scale else pl.col("x")
        summary = values.select(
            x.median().alias("median"),
            (x - x.median()).abs().median().alias("mad"),
            x.quantile(0.25, "linear").alias("q1"),
            x.quantile(0.75, "linear").alias("q3"),
        ).row(0, named=True)
        median, mad, q1, q3 = summary["median"], summary["mad"], summary["q1"], summary["q3"]
        iqr = q3 - q1
        low, high = q1 - config.outlier_iqr_k * iqr, q3 + config.outlier_iqr_k * iqr
        if iqr == 0 and mad == 0:
            continue
        outside = (x < low) | (x > high)
        robust = (0.6745 * (x - median) / mad) if mad > 0 else pl.lit(None, pl.Float64)
        flagged = values.with_columns(robust.alias("z")).filter(
            outside & ((pl.col("z").abs() > config.outlier_z) | (mad == 0))
        )
        scale = "log" if log_scale else "linear"
        typical = math.exp(median) if log_scale else median
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
                        "scale": scale,
                        "median": median,
                        "mad": mad,
                        "robust_z": z,
                        "fences": [low, high],
                    },
                    submission_id=sid,
                    field=field.path,
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
