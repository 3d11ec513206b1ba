"""Comparison of a numeric question across the groups of a categorical one.

`method="auto"` chooses by the data's assumptions: Welch's t-test for two groups and a
one-way ANOVA for more (Welch's ANOVA when Levene's median-centred test says the variances
differ) when every group is large (n ≥ 30, the central limit theorem covers the means) or
passes a Shapiro-Wilk normality test; otherwise the rank-based Kruskal-Wallis test. Effect
sizes: Cohen's d (pooled SD, normal-approximation CI) for two groups, eta² (CI by inverting
the noncentral F) for ANOVA, epsilon² (percentile bootstrap CI, seeded, up to 20,000
answers) for Kruskal-Wallis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import optimize, stats

from odk_mcp.services.analytics.domain.categorical import is_answered
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.fields import FieldIndex, Kind, category_order
from odk_mcp.services.analytics.domain.numeric import MeanEstimate, as_float, mean_ci

Method = Literal["auto", "welch", "anova", "welch_anova", "kruskal"]
NORMAL_ENOUGH_N = 30
BOOTSTRAP_MAX_N = 20_000


@dataclass(frozen=True)
class GroupSummary:
    group: str
    median: float
    estimate: MeanEstimate


@dataclass(frozen=True)
class EffectSize:
    name: Literal["cohens_d", "eta_squared", "epsilon_squared"]
    value: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Comparison:
    value_field: str
    group_field: str
    method: Literal["welch", "anova", "welch_anova", "kruskal"]
    reason: str
    statistic: float
    p_value: float
    df: tuple[float, ...]
    groups: list[GroupSummary]
    effect: EffectSize
    difference: MeanEstimate | None  # mean of the first group minus the second (Welch CI)
    n: int
    missing: int
    notes: list[str]


def compare(
    frame: pl.DataFrame,
    fields: FieldIndex,
    value: str,
    group: str,
    method: Method = "auto",
    confidence: float = 0.95,
) -> Comparison:
    fields.require(value, [Kind.NUMERIC], "compared value")
    group_field = fields.require(group, [Kind.CATEGORICAL], "grouping variable")
    data = frame.select(pl.col(group).cast(pl.String).alias("g"), as_float(value).alias("y")).filter(
        is_answered("g") & pl.col("y").is_not_null() & pl.col("y").is_finite()
    )
    summary = data.group_by("g").agg(
        pl.len().alias("n"),
        pl.col("y").mean().alias("mean"),
        pl.col("y").std().alias("sd"),
        pl.col("y").median().alias("median"),
    )
    if data.height and data["y"].n_unique() < 2:
        raise AnalysisError(
            "constantValues", f"Every answer to {value!r} is the same; there is nothing to compare."
        )
    notes: list[str] = []
    small = summary.filter(pl.col("n") < 2)["g"].to_list()
    if small:
        notes.append(f"Groups with fewer than two answers are left out: {', '.join(sorted(small))}.")
    order = category_order(group_field, summary.filter(pl.col("n") >= 2)["g"].to_list())
    if len(order) < 2:
        raise AnalysisError("notEnoughGroups", "At least two groups with two or more answers are needed.")
    stats_by = {row[0]: row for row in summary.iter_rows()}
    parts = {str(k[0]): v for k, v in data.partition_by("g", as_dict=True).items()}
    samples = [parts[g]["y"].to_numpy() for g in order]
    chosen, reason = _choose(samples, method)
    statistic, p, df = _test(chosen, samples)
    groups = [
        GroupSummary(
            g,
            float(stats_by[g][4]),
            mean_ci(int(stats_by[g][1]), float(stats_by[g][2]), stats_by[g][3], confidence),
        )
        for g in order
    ]
    difference = None
    if chosen == "welch":
        a, b = samples
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
        se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
        difference = MeanEstimate(
            len(a) + len(b), float(a.mean() - b.mean()), None, se, float(ci.low), float(ci.high)
        )
    n = sum(len(s) for s in samples)
    return Comparison(
        value_field=value,
        group_field=group,
        method=chosen,
        reason=reason,
        statistic=statistic,
        p_value=p,
        df=df,
        groups=groups,
        effect=_effect(chosen, samples, statistic, confidence, notes),
        difference=difference,
        n=n,
        missing=frame.height - data.height,
        notes=notes,
    )


def _choose(
    samples: list[np.ndarray], method: Method
) -> tuple[Literal["welch", "anova", "welch_anova", "kruskal"], str]:
    if method != "auto":
        if method == "welch" and len(samples) != 2:
            raise AnalysisError(
                "wrongMethod", "Welch's t-test compares exactly two groups; use anova or kruskal."
            )
        return method, "asked for"
    normal = all(
        len(s) >= NORMAL_ENOUGH_N or (len(s) >= 3 and np.ptp(s) > 0 and stats.shapiro(s).pvalue >= 0.05)
        for s in samples
    )
    if not normal:
        return "kruskal", "a small group is not normally distributed (Shapiro-Wilk p < 0.05)"
    if len(samples) == 2:
        return "welch", "two groups, normal enough (n ≥ 30 or Shapiro-Wilk p ≥ 0.05)"
    if stats.levene(*samples, center="median").pvalue < 0.05:
        return "welch_anova", "groups normal enough but with unequal variances (Levene p < 0.05)"
    return "anova", "groups normal enough with similar variances (Levene p ≥ 0.05)"


def _test(method: str, samples: list[np.ndarray]) -> tuple[float, float, tuple[float, ...]]:
    if method == "welch":
        t = stats.ttest_ind(samples[0], samples[1], equal_var=False)
        return float(t.statistic), float(t.pvalue), (float(t.df),)
    if method in ("anova", "welch_anova"):
        f = stats.f_oneway(*samples, equal_var=method == "anova")
        k, n = len(samples), sum(len(s) for s in samples)
        df2 = _welch_df2(samples) if method == "welch_anova" else float(n - k)
        return float(f.statistic), float(f.pvalue), (float(k - 1), df2)
    h = stats.kruskal(*samples)
    return float(h.statistic), float(h.pvalue), (float(len(samples) - 1),)


def _welch_df2(samples: list[np.ndarray]) -> float:
    """The denominator degrees of freedom of Welch's ANOVA."""
    k = len(samples)
    n = np.array([len(s) for s in samples], dtype=float)
    w = n / np.array([np.var(s, ddof=1) for s in samples])
    lam = np.sum((1 - w / w.sum()) ** 2 / (n - 1))
    return float((k**2 - 1) / (3 * lam))


def _effect(
    method: str, samples: list[np.ndarray], statistic: float, confidence: float, notes: list[str]
) -> EffectSize:
    if method == "welch":
        return cohens_d(samples[0], samples[1], confidence)
    if method == "kruskal":
        return epsilon_squared(samples, statistic, confidence, notes)
    return eta_squared(samples, confidence)


def cohens_d(a: np.ndarray, b: np.ndarray, confidence: float) -> EffectSize:
    """Cohen's d with the pooled SD; CI from the large-sample normal approximation."""
    n1, n2 = len(a), len(b)
    pooled = math.sqrt(((n1 - 1) * np.var(a, ddof=1) + (n2 - 1) * np.var(b, ddof=1)) / (n1 + n2 - 2))
    d = float((np.mean(a) - np.mean(b)) / pooled) if pooled > 0 else 0.0
    se = math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    return EffectSize("cohens_d", d, d - z * se, d + z * se)


def eta_squared(samples: list[np.ndarray], confidence: float) -> EffectSize:
    """eta² = SS_between / SS_total, CI from the noncentral F (Steiger 2004): λ/(λ + N)."""
    values = np.concatenate(samples)
    grand = values.mean()
    ss_between = sum(len(s) * (s.mean() - grand) ** 2 for s in samples)
    ss_total = float(((values - grand) ** 2).sum())
    eta2 = float(ss_between / ss_total) if ss_total > 0 else 0.0
    k, n = len(samples), len(values)
    df1, df2 = k - 1, n - k
    if ss_total == ss_between or df2 <= 0:
        return EffectSize("eta_squared", eta2, None, None)
    f = (ss_between / df1) / ((ss_total - ss_between) / df2)
    alpha = 1 - confidence
    low = _noncentrality(f, df1, df2, 1 - alpha / 2)
    high = _noncentrality(f, df1, df2, alpha / 2)
    return EffectSize("eta_squared", eta2, low / (low + n), high / (high + n))


def _noncentrality(f: float, df1: int, df2: int, target: float) -> float:
    """The λ at which the noncentral F's CDF at `f` equals `target` (0 when even λ=0 is below)."""

    def gap(lam: float) -> float:
        return float(stats.ncf.cdf(f, df1, df2, lam)) - target

    if gap(0.0) <= 0:
        return 0.0
    upper = max(10.0, f * df1 * 4)
    while gap(upper) > 0:
        upper *= 2
    return float(optimize.brentq(gap, 0.0, upper, xtol=1e-10))


def epsilon_squared(samples: list[np.ndarray], h: float, confidence: float, notes: list[str]) -> EffectSize:
    """epsilon² = H / (n - 1) (Tomczak & Tomczak 2014), bootstrap CI for moderate n."""
    n = sum(len(s) for s in samples)
    value = h / (n - 1)
    if n > BOOTSTRAP_MAX_N:
        notes.append(f"No bootstrap CI for epsilon² above {BOOTSTRAP_MAX_N:,} answers.")
        return EffectSize("epsilon_squared", value, None, None)

    def statistic(*groups: np.ndarray) -> float:
        total = sum(len(g) for g in groups)
        return float(stats.kruskal(*groups).statistic) / (total - 1)

    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=999,
        method="percentile",
        confidence_level=confidence,
        rng=np.random.default_rng(0),
        vectorized=False,
    )
    return EffectSize(
        "epsilon_squared",
        value,
        float(result.confidence_interval.low),
        float(result.confidence_interval.high),
    )
