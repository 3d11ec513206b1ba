"""Proportions and means with confidence intervals, unweighted or survey-weighted.

Unweighted: a proportion gets the Wilson score interval, a mean the Student t interval.
Weighted, or with strata/clusters: the design-based (Taylor-linearised) standard error of
`design.py`, t intervals with PSUs - strata degrees of freedom, on the logit scale for
proportions (as Stata's `svy: proportion` and `samplics` do). Submissions without an answer
(or, weighted, without a weight) are left out (listwise, like `svy`); negative weights are
refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

from odk_mcp.services.analytics.domain.categorical import answers
from odk_mcp.services.analytics.domain.design import taylor_means
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.fields import META_COLUMNS, FieldIndex, Kind, category_order, kind_of
from odk_mcp.services.analytics.domain.numeric import as_float, mean_ci
from odk_mcp.services.analytics.domain.survey import Design


@dataclass(frozen=True)
class Estimate:
    category: str | None  # None for a mean
    estimate: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    n: int  # answers (in the category, for proportions)


@dataclass(frozen=True)
class DesignSummary:
    weights: str | None
    strata: str | None
    clusters: str | None
    n_strata: int
    n_psu: int
    df: int
    weight_total: float
    effective_n: float
    singleton_strata: list[str]


@dataclass(frozen=True)
class EstimateResult:
    field: str
    parameter: Literal["mean", "proportion"]
    method: Literal["t", "wilson", "taylor"]
    confidence: float
    n: int
    missing: int
    estimates: list[Estimate]
    design: DesignSummary | None
    notes: list[str]


def estimate(
    frame: pl.DataFrame, fields: FieldIndex, path: str, design: Design | None = None, confidence: float = 0.95
) -> EstimateResult:
    field = fields.require(path, [Kind.NUMERIC, Kind.CATEGORICAL, Kind.MULTIPLE], "estimated field")
    kind = kind_of(field)
    design = design or Design()
    usable, notes = _design_rows(frame, fields, design)
    if kind is Kind.NUMERIC:
        values = usable.select(as_float(path).fill_nan(None)).to_series()
        answered = usable.filter(values.is_not_null())
        y = answered.select(as_float(path)).to_numpy().astype(float)
        categories: list[str | None] = [None]
    elif kind is Kind.CATEGORICAL:
        # One answer per submission: an indicator column per category, compared in Polars.
        text = pl.col(path).cast(pl.String).str.strip_chars()
        answered = usable.filter(text.is_not_null() & (text != ""))
        column = answered.select(text.alias("v")).to_series()
        cats = category_order(field, column.unique().to_list())
        y = (
            np.column_stack([(column == c).to_numpy() for c in cats]).astype(float)
            if cats
            else np.zeros((0, 0))
        )
        categories = list(cats)
    else:
        long = answers(usable, path, kind is Kind.MULTIPLE)
        rows = long["__row"].unique().sort()
        answered = (
            usable.with_row_index("__row").join(pl.DataFrame({"__row": rows}), on="__row").drop("__row")
        )
        cats = category_order(field, long["value"].unique().to_list())
        wide = long.with_columns(pl.lit(1.0).alias("one")).pivot(
            on="value", index="__row", values="one", aggregate_function="max"
        )
        wide = pl.DataFrame({"__row": rows}).join(wide, on="__row", how="left").fill_null(0.0)
        y = wide.select(cats).to_numpy().astype(float)
        categories = list(cats)
    missing = frame.height - answered.height
    if answered.height == 0:
        raise AnalysisError("noData", f"No submission answered {path!r}.", {"field": path})
    parameter: Literal["mean", "proportion"] = "mean" if kind is Kind.NUMERIC else "proportion"
    if design.is_complex:
        return _weighted(answered, y, categories, path, parameter, design, confidence, missing, notes)
    n = y.shape[0]
    if parameter == "mean":
        m = mean_ci(n, float(y[:, 0].mean()), float(y[:, 0].std(ddof=1)) if n > 1 else None, confidence)
        est = Estimate(None, m.mean, m.se, m.ci_low, m.ci_high, n)
        return EstimateResult(path, parameter, "t", confidence, n, missing, [est], None, notes)
    counts = y.sum(axis=0)
    out = []
    for category, count in zip(categories, counts, strict=True):
        p = count / n
        low, high = wilson(int(count), n, confidence)
        out.append(Estimate(category, float(p), math.sqrt(p * (1 - p) / n), low, high, int(count)))
    return EstimateResult(path, parameter, "wilson", confidence, n, missing, out, None, notes)


def wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _design_rows(frame: pl.DataFrame, fields: FieldIndex, design: Design) -> tuple[pl.DataFrame, list[str]]:
    """The rows usable for a design (weight present and finite), after checking the variables."""
    notes: list[str] = []
    for role, path in (("strata", design.strata), ("clusters", design.clusters)):
        if path is not None and path not in META_COLUMNS:
            fields.require(path, [Kind.CATEGORICAL, Kind.TEXT, Kind.NUMERIC], role)
    if design.weights is None:
        return frame, notes
    fields.require(design.weights, [Kind.NUMERIC], "weights")
    weight = as_float(design.weights)
    if frame.select((weight < 0).any()).item():
        raise AnalysisError("negativeWeights", f"The weights {design.weights!r} include negative values.")
    usable = frame.filter(weight.is_not_null() & weight.is_finite())
    if usable.height < frame.height:
        notes.append(f"{frame.height - usable.height} submissions without a weight are left out.")
    return usable, notes


def _weighted(
    rows: pl.DataFrame,
    y: np.ndarray,
    categories: list[str | None],
    path: str,
    parameter: Literal["mean", "proportion"],
    design: Design,
    confidence: float,
    missing: int,
    notes: list[str],
) -> EstimateResult:
    weights = (
        rows.select(as_float(design.weights)).to_series().to_numpy()
        if design.weights
        else np.ones(rows.height)
    )
    if weights.sum() <= 0:
        raise AnalysisError("zeroWeights", "The weights of the answering submissions sum to zero.")
    strata = rows[design.strata].cast(pl.String).fill_null("") if design.strata else None
    psu = rows[design.clusters].cast(pl.String).fill_null("") if design.clusters else None
    result = taylor_means(y, weights, strata, psu)
    if result.singleton_strata:
        notes.append(f"Strata with a single PSU add no variance: {', '.join(result.singleton_strata[:10])}.")
    t = float(stats.t.ppf(0.5 + confidence / 2, result.df)) if result.df > 0 else math.nan
    out = []
    for i, category in enumerate(categories):
        value, se = float(result.estimates[i]), math.sqrt(max(float(result.variances[i]), 0.0))
        count = int(np.count_nonzero(y[:, i])) if parameter == "proportion" else y.shape[0]
        low, high = (
            _logit_interval(value, se, t) if parameter == "proportion" else (value - t * se, value + t * se)
        )
        if math.isnan(t):
            low = high = None
        out.append(Estimate(category, value, se, low, high, count))
    summary = DesignSummary(
        weights=design.weights,
        strata=design.strata,
        clusters=design.clusters,
        n_strata=result.n_strata,
        n_psu=result.n_psu,
        df=result.df,
        weight_total=result.weight_total,
        effective_n=result.effective_n,
        singleton_strata=result.singleton_strata,
    )
    return EstimateResult(path, parameter, "taylor", confidence, y.shape[0], missing, out, summary, notes)


def _logit_interval(p: float, se: float, t: float) -> tuple[float | None, float | None]:
    if p <= 0 or p >= 1:
        return p, p
    centre = math.log(p / (1 - p))
    half = t * se / (p * (1 - p))
    return 1 / (1 + math.exp(-(centre - half))), 1 / (1 + math.exp(-(centre + half)))
