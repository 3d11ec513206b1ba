"""Numeric columns: values of a field as floats, and the t confidence interval of a mean."""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl


def as_float(path: str) -> pl.Expr:
    """A numeric field as Float64 (numbers stored as text by an older form version are cast)."""
    return pl.col(path).cast(pl.Float64, strict=False)


@dataclass(frozen=True)
class MeanEstimate:
    n: int
    mean: float
    sd: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None


def mean_ci(n: int, mean: float, sd: float | None, confidence: float) -> MeanEstimate:
    """Mean with its Student t interval (undefined below two values)."""
    if n < 2 or sd is None or not math.isfinite(sd):
        return MeanEstimate(n, mean, None, None, None, None)
    from scipy import stats  # on first use: quality checks need no SciPy

    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return MeanEstimate(n, mean, sd, se, mean - half, mean + half)
