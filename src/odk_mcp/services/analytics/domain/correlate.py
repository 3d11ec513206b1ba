"""Pairwise correlations of numeric questions: Pearson or Spearman, p-values and CIs.

Pairs use the submissions that answered both (pairwise-complete). Confidence intervals use
Fisher's z transform; for Spearman with Bonett & Wright's (2000) standard error
sqrt((1 + ρ²/2) / (n - 3)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.fields import FieldIndex, Kind
from odk_mcp.services.analytics.domain.numeric import as_float

CorrelationMethod = Literal["pearson", "spearman"]
MAX_FIELDS = 30


@dataclass(frozen=True)
class Correlation:
    x: str
    y: str
    method: CorrelationMethod
    n: int
    r: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


def correlate(
    frame: pl.DataFrame,
    fields: FieldIndex,
    paths: list[str],
    method: CorrelationMethod = "pearson",
    confidence: float = 0.95,
) -> list[Correlation]:
    """Every pair of the given numeric fields, in the order given."""
    if len(paths) < 2 or len(set(paths)) != len(paths):
        raise AnalysisError("notEnoughFields", "Give at least two different numeric fields.")
    if len(paths) > MAX_FIELDS:
        raise AnalysisError("tooManyFields", f"At most {MAX_FIELDS} fields can be correlated at once.")
    for path in paths:
        fields.require(path, [Kind.NUMERIC], "correlated field")
    data = frame.select(as_float(p).fill_nan(None).alias(p) for p in paths)
    return [
        pair(data[x].to_numpy(), data[y].to_numpy(), x, y, method, confidence)
        for x, y in combinations(paths, 2)
    ]


def pair(
    xs: np.ndarray, ys: np.ndarray, x: str, y: str, method: CorrelationMethod, confidence: float
) -> Correlation:
    keep = np.isfinite(xs) & np.isfinite(ys)
    a, b = xs[keep], ys[keep]
    n = len(a)
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return Correlation(x, y, method, n, None, None, None, None)
    if method == "pearson":
        result = stats.pearsonr(a, b)
        r, p = float(result.statistic), float(result.pvalue)
        se = 1 / math.sqrt(n - 3) if n > 3 else math.inf
    else:
        result_s = stats.spearmanr(a, b)
        r, p = float(result_s.statistic), float(result_s.pvalue)
        se = math.sqrt((1 + r * r / 2) / (n - 3)) if n > 3 else math.inf
    low, high = fisher_interval(r, se, confidence)
    return Correlation(x, y, method, n, r, p, low, high)


def fisher_interval(r: float, se: float, confidence: float) -> tuple[float | None, float | None]:
    if not math.isfinite(se):
        return None, None
    if abs(r) >= 1:
        return r, r
    z = math.atanh(r)
    crit = float(stats.norm.ppf(0.5 + confidence / 2))
    return math.tanh(z - crit * se), math.tanh(z + crit * se)
