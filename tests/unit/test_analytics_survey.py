"""Survey-weighted estimates (Taylor linearisation) against samplics and a hand computation,
and submissions over time."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest
from scipy import stats

from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.estimate import Design, estimate
from odk_mcp.services.analytics.domain.fields import FieldIndex
from odk_mcp.services.analytics.domain.timeseries import timeseries
from odk_mcp.services.forms import Choice, Field

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # samplics announces its successor on import
    from samplics.estimation import TaylorEstimator
    from samplics.utils.types import PopParam


def field(path: str, kind: str = "decimal", choices: tuple[str, ...] = ()) -> Field:
    return Field(
        path=path,
        name=path[1:],
        type="string" if choices else kind,
        repeat=None,
        binary=False,
        select_multiple=False,
        choices=tuple(Choice(c, {}) for c in choices),
    )


FIELDS = FieldIndex.of(
    [
        field("/y"),
        field("/w"),
        field("/stratum", "string"),
        field("/psu", "int"),
        field("/answer", choices=("a", "b", "c")),
    ]
)


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    rng = np.random.default_rng(21)
    n = 2000
    stratum = rng.choice(["urban", "rural", "peri"], n, p=[0.5, 0.3, 0.2])
    psu = rng.integers(0, 25, n)
    effect = rng.normal(0, 2, 25)[psu]
    return pl.DataFrame(
        {
            "/y": 10 + effect + rng.normal(0, 3, n),
            "/w": rng.uniform(0.2, 5, n),
            "/stratum": stratum,
            "/psu": psu,
            "/answer": rng.choice(["a", "b", "c"], n, p=[0.2, 0.5, 0.3]),
        }
    )


def hand_taylor(y, w, strata, psu):
    """The textbook estimator written out with loops (Wolter 2007, ch. 6)."""
    mean = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    total = sum(w)
    z = [wi * (yi - mean) / total for wi, yi in zip(w, y, strict=True)]
    variance = 0.0
    for h in sorted(set(strata)):
        sums: dict[object, float] = {}
        for zi, hi, ci in zip(z, strata, psu, strict=True):
            if hi == h:
                sums[ci] = sums.get(ci, 0.0) + zi
        n_h = len(sums)
        centre = sum(sums.values()) / n_h
        variance += n_h / (n_h - 1) * sum((s - centre) ** 2 for s in sums.values())
    return mean, math.sqrt(variance)


def test_weighted_stratified_clustered_mean_matches_samplics_and_the_hand_formula(sample):
    result = estimate(sample, FIELDS, "/y", Design(weights="/w", strata="/stratum", clusters="/psu"))
    (est,) = result.estimates
    reference = TaylorEstimator(PopParam.mean)
    psu_ids = (sample["/stratum"] + ":" + sample["/psu"].cast(pl.String)).to_numpy()
    reference.estimate(
        y=sample["/y"].to_numpy(),
        samp_weight=sample["/w"].to_numpy(),
        stratum=sample["/stratum"].to_numpy(),
        psu=psu_ids,
    )
    assert est.estimate == pytest.approx(reference.point_est, abs=1e-9)
    assert est.se == pytest.approx(reference.stderror, abs=1e-6)
    assert est.ci_low == pytest.approx(reference.lower_ci, abs=1e-6)
    assert est.ci_high == pytest.approx(reference.upper_ci, abs=1e-6)
    assert result.design is not None and result.design.df == reference.degree_of_freedom
    mean, se = hand_taylor(
        sample["/y"].to_list(), sample["/w"].to_list(), sample["/stratum"].to_list(), psu_ids.tolist()
    )
    assert (est.estimate, est.se) == (pytest.approx(mean, abs=1e-9), pytest.approx(se, abs=1e-9))
    w = sample["/w"].to_numpy()
    assert result.design.effective_n == pytest.approx(w.sum() ** 2 / (w**2).sum())


def test_weighted_proportions_match_samplics_including_logit_intervals(sample):
    result = estimate(sample, FIELDS, "/answer", Design(weights="/w", clusters="/psu"))
    reference = TaylorEstimator(PopParam.prop)
    reference.estimate(
        y=sample["/answer"].to_numpy(), samp_weight=sample["/w"].to_numpy(), psu=sample["/psu"].to_numpy()
    )
    assert [e.category for e in result.estimates] == ["a", "b", "c"]
    for est in result.estimates:
        assert est.estimate == pytest.approx(reference.point_est[est.category], abs=1e-9)
        assert est.se == pytest.approx(reference.stderror[est.category], abs=1e-6)
        assert est.ci_low == pytest.approx(reference.lower_ci[est.category], abs=1e-6)
        assert est.ci_high == pytest.approx(reference.upper_ci[est.category], abs=1e-6)


def test_weights_alone_treat_each_submission_as_its_own_psu(sample):
    result = estimate(sample, FIELDS, "/y", Design(weights="/w"))
    reference = TaylorEstimator(PopParam.mean)
    reference.estimate(y=sample["/y"].to_numpy(), samp_weight=sample["/w"].to_numpy())
    (est,) = result.estimates
    assert est.se == pytest.approx(reference.stderror, abs=1e-6)
    assert result.design is not None and result.design.df == sample.height - 1


def test_hand_verified_tiny_design():
    # Two strata with two PSUs each, weights 1/2/1/2/… :
    # ȳ = Σwy/Σw = (1·2 + 2·4 + 1·6 + 2·8 + 1·3 + 2·5) / 9 = 45/9 = 5.
    frame = pl.DataFrame(
        {
            "/y": [2.0, 4, 6, 8, 3, 5],
            "/w": [1.0, 2, 1, 2, 1, 2],
            "/stratum": ["A", "A", "A", "A", "B", "B"],
            "/psu": [1, 1, 2, 2, 3, 4],
        }
    )
    result = estimate(frame, FIELDS, "/y", Design(weights="/w", strata="/stratum", clusters="/psu"))
    (est,) = result.estimates
    assert est.estimate == pytest.approx(5.0)
    # z = w(y - 5)/9: PSU sums A1 = (-3 - 2)/9 = -5/9, A2 = (1 + 6)/9 = 7/9; B3 = -2/9, B4 = 0.
    # V = 2·[(-5/9 - 1/9)² + (7/9 - 1/9)²] + 2·[(-2/9 + 1/9)² + (0 + 1/9)²] = 2·72/81 + 2·2/81 = 148/81.
    assert est.se == pytest.approx(math.sqrt(148 / 81))
    assert result.design is not None and (result.design.n_psu, result.design.n_strata, result.design.df) == (
        4,
        2,
        2,
    )
    t = stats.t.ppf(0.975, 2)
    assert est.ci_low == pytest.approx(5 - t * math.sqrt(148 / 81))


def test_single_psu_strata_add_no_variance_and_are_reported():
    frame = pl.DataFrame(
        {"/y": [1.0, 2, 3, 10], "/w": [1.0, 1, 1, 1], "/stratum": ["A", "A", "A", "B"], "/psu": [1, 2, 3, 4]}
    )
    result = estimate(frame, FIELDS, "/y", Design(weights="/w", strata="/stratum", clusters="/psu"))
    assert result.design is not None and result.design.singleton_strata == ["B"]
    assert any("single PSU" in note for note in result.notes)


def test_negative_weights_are_refused_and_missing_weights_left_out():
    frame = pl.DataFrame({"/y": [1.0, 2, 3], "/w": [1.0, -1, 2], "/stratum": ["A"] * 3, "/psu": [1, 2, 3]})
    with pytest.raises(AnalysisError) as refused:
        estimate(frame, FIELDS, "/y", Design(weights="/w"))
    assert refused.value.reason == "negativeWeights"
    frame = frame.with_columns(pl.Series("/w", [1.0, None, 2.0]))
    result = estimate(frame, FIELDS, "/y", Design(weights="/w"))
    assert result.n == 2 and result.estimates[0].estimate == pytest.approx((1 + 6) / 3)


# --- time series ---------------------------------------------------------------------------


def test_daily_counts_fill_gaps_and_split_by_enumerator():
    at = [
        datetime(2026, 1, 1, 23, tzinfo=UTC),
        datetime(2026, 1, 2, 1, tzinfo=UTC),
        datetime(2026, 1, 5, 9, tzinfo=UTC),
    ]
    frame = pl.DataFrame({"created_at": at, "submitter_id": [7, 8, 7], "form_version": ["1", "1", "2"]})
    daily = timeseries(frame)
    assert daily.periods == [date(2026, 1, d) for d in range(1, 6)]
    assert daily.series[0].counts == [1, 1, 0, 0, 1] and daily.total == 3
    # In Nairobi (UTC+3) the first two fall on 2 January.
    by_enumerator = timeseries(frame, "day", "enumerator", "Africa/Nairobi")
    assert by_enumerator.periods[0] == date(2026, 1, 2)
    assert [(s.key, s.counts) for s in by_enumerator.series] == [("7", [1, 0, 0, 1]), ("8", [1, 0, 0, 0])]
    weekly = timeseries(frame, "week", "form_version")
    assert weekly.periods == [date(2025, 12, 29), date(2026, 1, 5)]
    assert [(s.key, s.counts) for s in weekly.series] == [("1", [2, 0]), ("2", [0, 1])]


def test_unknown_time_zone_is_a_clear_error():
    frame = pl.DataFrame({"created_at": [datetime(2026, 1, 1, tzinfo=UTC)]})
    with pytest.raises(AnalysisError) as error:
        timeseries(frame, time_zone="Mars/Olympus")
    assert error.value.reason == "unknownTimeZone"
