"""Design-based (Taylor-linearised) variance of weighted means and proportions.

For the weighted mean ȳ = Σ wᵢyᵢ / Σ wᵢ (a proportion is the mean of an indicator), the
linearised score is zᵢ = wᵢ(yᵢ - ȳ) / Σ wᵢ. Scores are summed per primary sampling unit
(PSU: the cluster, or the submission when there are no clusters) within each stratum, and

    V(ȳ) = Σₕ nₕ / (nₕ - 1) · Σⱼ (zₕⱼ - z̄ₕ)²

(with-replacement approximation, no finite population correction), the estimator of Stata's
`svy`, R's `survey` and `samplics`. Degrees of freedom = PSUs - strata. A stratum with a
single PSU contributes no variance (it is reported). Everything is columnar: the scores of
all estimated columns are aggregated in two Polars group-bys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class DesignVariance:
    estimates: np.ndarray  # one weighted mean per column of y
    variances: np.ndarray
    n_strata: int
    n_psu: int
    singleton_strata: list[str]
    weight_total: float
    effective_n: float  # Kish: (Σw)² / Σw²

    @property
    def df(self) -> int:
        return self.n_psu - self.n_strata


def taylor_means(
    y: np.ndarray, weights: np.ndarray, strata: pl.Series | None, psu: pl.Series | None
) -> DesignVariance:
    """Weighted means of the columns of `y` (n x k) and their linearised variances."""
    total = float(weights.sum())
    estimates = weights @ y / total
    scores = weights[:, None] * (y - estimates[None, :]) / total
    names = [f"z{i}" for i in range(y.shape[1])]
    frame = pl.DataFrame({name: scores[:, i] for i, name in enumerate(names)}).with_columns(
        strata.cast(pl.String).alias("stratum") if strata is not None else pl.lit("").alias("stratum"),
        psu.cast(pl.String).alias("psu")
        if psu is not None
        else pl.int_range(pl.len()).cast(pl.String).alias("psu"),
    )
    if psu is not None:
        frame = frame.group_by("stratum", "psu").agg(pl.col(names).sum())
    per_stratum = frame.group_by("stratum").agg(
        pl.len().alias("n_h"), *[((pl.col(c) - pl.col(c).mean()) ** 2).sum().alias(c) for c in names]
    )
    n_h = per_stratum["n_h"].to_numpy().astype(float)
    factor = np.where(n_h > 1, n_h / np.maximum(n_h - 1, 1), 0.0)
    variances = np.array([float((factor * per_stratum[c].to_numpy()).sum()) for c in names])
    singletons = (
        sorted(per_stratum.filter(pl.col("n_h") == 1)["stratum"].to_list()) if strata is not None else []
    )
    return DesignVariance(
        estimates=estimates,
        variances=variances,
        n_strata=per_stratum.height,
        n_psu=int(n_h.sum()),
        singleton_strata=singletons,
        weight_total=total,
        effective_n=total**2 / float((weights**2).sum()),
    )
