"""Every statistic of the analytics domain against an independent computation (statsmodels,
scipy called directly, or the textbook formula written out) and small hand-verified data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import Table
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.oneway import anova_oneway
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from odk_mcp.services.analytics.domain.compare import compare
from odk_mcp.services.analytics.domain.correlate import correlate
from odk_mcp.services.analytics.domain.crosstab import crosstab
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.estimate import estimate
from odk_mcp.services.analytics.domain.fields import FieldIndex
from odk_mcp.services.analytics.domain.notable import notable_crosstabs
from odk_mcp.services.forms import Choice, Field


def select(path: str, values: list[str], multiple: bool = False) -> Field:
    return Field(
        path=path,
        name=path.rsplit("/", 1)[-1],
        type="string",
        repeat=None,
        binary=False,
        select_multiple=multiple,
        choices=tuple(Choice(v, {"default": v.title()}) for v in values),
    )


def number(path: str, kind: str = "decimal") -> Field:
    return Field(
        path=path, name=path.rsplit("/", 1)[-1], type=kind, repeat=None, binary=False, select_multiple=False
    )


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, FieldIndex]:
    rng = np.random.default_rng(11)
    n = 600
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    shift = {"a": 0.0, "b": 0.4, "c": 1.0}
    frame = pl.DataFrame(
        {
            "/sex": rng.choice(["f", "m"], n),
            "/group": group,
            "/score": np.array([shift[g] for g in group]) + rng.normal(0, 1 + (group == "c"), n),
            "/age": rng.integers(18, 70, n).astype(float),
            "/crops": rng.choice(["maize", "maize beans", "rice", "beans rice"], n),
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 0).then(None).otherwise(pl.col("/sex")).alias("/sex"),
        (pl.col("/age") * 0.05 + pl.col("/score")).alias("/income"),
    )
    fields = FieldIndex.of(
        [
            select("/sex", ["f", "m"]),
            select("/group", ["a", "b", "c"]),
            number("/score"),
            number("/age", "int"),
            number("/income"),
            select("/crops", ["maize", "beans", "rice"], multiple=True),
        ]
    )
    return frame, fields


# --- crosstab ------------------------------------------------------------------------------


def test_crosstab_counts_percentages_chi_square_and_cramers_v_match_statsmodels(data):
    frame, fields = data
    result = crosstab(frame, fields, "/sex", "/group")
    pdf = frame.drop_nulls("/sex").to_pandas()
    observed = np.array([[((pdf["/sex"] == r) & (pdf["/group"] == c)).sum() for c in "abc"] for r in "fm"])
    assert result.rows == ["f", "m"] and result.cols == ["a", "b", "c"]
    assert result.counts == observed.tolist()
    assert result.missing == frame["/sex"].null_count()
    np.testing.assert_allclose(result.row_percent, 100 * observed / observed.sum(1, keepdims=True))
    np.testing.assert_allclose(result.col_percent, 100 * observed / observed.sum(0, keepdims=True))
    reference = Table(observed).test_nominal_association()
    assert result.test is not None and result.test.name == "chi2"
    assert result.test.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.test.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.test.dof == reference.df
    assert result.cramers_v == pytest.approx(math.sqrt(reference.statistic / (observed.sum() * 1)), rel=1e-9)


def test_crosstab_of_a_hand_verified_two_by_two_table():
    # Smokers by sex: [[20, 30], [30, 20]]; expected 25 everywhere, chi² = 4·25/25 = 4.
    frame = pl.DataFrame(
        {
            "/a": ["y"] * 20 + ["y"] * 30 + ["n"] * 30 + ["n"] * 20,
            "/b": ["f"] * 20 + ["m"] * 30 + ["f"] * 30 + ["m"] * 20,
        }
    )
    fields = FieldIndex.of([select("/a", ["y", "n"]), select("/b", ["f", "m"])])
    result = crosstab(frame, fields, "/a", "/b")
    assert result.counts == [[20, 30], [30, 20]]
    assert result.test is not None and result.test.statistic == pytest.approx(4.0)
    assert result.test.p_value == pytest.approx(0.0455002638963584, rel=1e-9)  # 1 - χ²₁(4)
    assert result.cramers_v == pytest.approx(0.2)  # sqrt(4 / 100)
    assert result.row_percent == [[40.0, 60.0], [60.0, 40.0]]


def test_small_expected_counts_switch_to_fisher_exact():
    # The tea-tasting table [[3, 1], [1, 3]]: Fisher's two-sided p = 34/70 = 0.4857.
    frame = pl.DataFrame({"/a": list("yyyynnnn"), "/b": list("tttmtmmm")})
    fields = FieldIndex.of([select("/a", ["y", "n"]), select("/b", ["t", "m"])])
    result = crosstab(frame, fields, "/a", "/b")
    assert result.test is not None and result.test.name == "fisher"
    assert result.test.p_value == pytest.approx(34 / 70)
    assert result.test.statistic == pytest.approx(9.0)  # odds ratio 3·3 / (1·1)


def test_fisher_on_larger_tables_is_seeded_monte_carlo_and_repeatable():
    rng = np.random.default_rng(3)
    frame = pl.DataFrame({"/a": rng.choice(list("xyz"), 25), "/b": rng.choice(list("pqr"), 25)})
    fields = FieldIndex.of([select("/a", list("xyz")), select("/b", list("pqr"))])
    first = crosstab(frame, fields, "/a", "/b", test="fisher")
    again = crosstab(frame, fields, "/a", "/b", test="fisher")
    assert first.test is not None and again.test is not None
    assert first.test.p_value == again.test.p_value
    table = np.array(first.counts)
    exactish = stats.fisher_exact(
        table, method=stats.PermutationMethod(n_resamples=4000, rng=np.random.default_rng(9))
    )
    assert first.test.p_value == pytest.approx(exactish.pvalue, abs=0.03)


def test_small_cells_are_suppressed_on_request():
    frame = pl.DataFrame({"/a": ["y"] * 12 + ["n"] * 3, "/b": ["f"] * 10 + ["m"] * 2 + ["f"] * 3})
    fields = FieldIndex.of([select("/a", ["y", "n"]), select("/b", ["f", "m"])])
    result = crosstab(frame, fields, "/a", "/b", suppress_below=5)
    assert result.counts == [[10, None], [None, 0]]  # empty cells are not hidden (nothing to disclose)
    assert result.row_percent[0][1] is None
    assert result.suppressed_cells == 2
    assert result.row_totals == [12, 3]


def test_select_multiple_crosstab_counts_each_choice_and_skips_the_test(data):
    frame, fields = data
    result = crosstab(frame, fields, "/crops", "/group")
    pdf = frame.to_pandas()
    maize_a = sum(
        1
        for crops, g in zip(pdf["/crops"], pdf["/group"], strict=True)
        if "maize" in crops.split() and g == "a"
    )
    assert result.counts[result.rows.index("maize")][result.cols.index("a")] == maize_a
    assert result.test is None and result.notes


def test_crosstab_refuses_numeric_and_unknown_fields(data):
    frame, fields = data
    with pytest.raises(AnalysisError) as wrong:
        crosstab(frame, fields, "/score", "/group")
    assert wrong.value.reason == "wrongFieldKind"
    with pytest.raises(AnalysisError) as unknown:
        crosstab(frame, fields, "/nope", "/group")
    assert unknown.value.reason == "unknownField"


# --- group comparison ----------------------------------------------------------------------


def test_two_groups_use_welch_t_with_cohens_d(data):
    frame, fields = data
    result = compare(frame, fields, "/score", "/sex")
    pdf = frame.drop_nulls("/sex").to_pandas()
    f, m = pdf.loc[pdf["/sex"] == "f", "/score"].to_numpy(), pdf.loc[pdf["/sex"] == "m", "/score"].to_numpy()
    t, p, df = CompareMeans.from_data(f, m).ttest_ind(usevar="unequal")
    assert result.method == "welch"
    assert result.statistic == pytest.approx(t, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.df[0] == pytest.approx(df, rel=1e-9)
    low, high = CompareMeans.from_data(f, m).tconfint_diff(usevar="unequal")
    assert result.difference is not None
    assert (result.difference.ci_low, result.difference.ci_high) == (pytest.approx(low), pytest.approx(high))
    pooled = math.sqrt(((len(f) - 1) * f.var(ddof=1) + (len(m) - 1) * m.var(ddof=1)) / (len(f) + len(m) - 2))
    d = (f.mean() - m.mean()) / pooled
    assert result.effect.name == "cohens_d" and result.effect.value == pytest.approx(d)
    se = math.sqrt((len(f) + len(m)) / (len(f) * len(m)) + d * d / (2 * (len(f) + len(m))))
    assert result.effect.ci_low == pytest.approx(d - 1.959963984540054 * se)
    g = result.groups[0]
    assert g.group == "f" and g.estimate.mean == pytest.approx(f.mean())
    assert (g.estimate.ci_low, g.estimate.ci_high) == tuple(
        pytest.approx(v) for v in DescrStatsW(f).tconfint_mean()
    )


def test_three_groups_with_unequal_variances_use_welch_anova(data):
    frame, fields = data
    result = compare(frame, fields, "/score", "/group")
    pdf = frame.to_pandas()
    samples = [pdf.loc[pdf["/group"] == g, "/score"].to_numpy() for g in "abc"]
    assert stats.levene(*samples, center="median").pvalue < 0.05
    reference = anova_oneway(samples, use_var="unequal")
    assert result.method == "welch_anova"
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.df[1] == pytest.approx(reference.df[1], rel=1e-9)


def test_classic_anova_and_eta_squared_with_its_noncentral_f_interval(data):
    frame, fields = data
    result = compare(frame, fields, "/age", "/group", method="anova")
    pdf = frame.to_pandas()
    samples = [pdf.loc[pdf["/group"] == g, "/age"].to_numpy() for g in "abc"]
    reference = anova_oneway(samples, use_var="equal")
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    values = np.concatenate(samples)
    ss_between = sum(len(s) * (s.mean() - values.mean()) ** 2 for s in samples)
    eta2 = ss_between / ((values - values.mean()) ** 2).sum()
    assert result.effect.value == pytest.approx(eta2)
    # The bounds are λ/(λ+N) for the λ putting the observed F at the 97.5th / 2.5th percentile.
    n = len(values)
    for bound, target in ((result.effect.ci_low, 0.975), (result.effect.ci_high, 0.025)):
        assert bound is not None
        lam = bound * n / (1 - bound)
        if lam > 0:
            assert stats.ncf.cdf(reference.statistic, 2, n - 3, lam) == pytest.approx(target, abs=1e-6)


def test_kruskal_wallis_and_epsilon_squared_by_hand():
    # Hand ranks: a = [1, 2, 3] → ranks 1, 2, 3; b = [4, 5, 6, 7] → ranks 4..7.
    # H = 12/(7·8) · (6²/3 + 22²/4) - 3·8 = 12/56 · (12 + 121) - 24 = 4.5.
    frame = pl.DataFrame({"/g": ["a"] * 3 + ["b"] * 4, "/y": [1.0, 2, 3, 4, 5, 6, 7]})
    fields = FieldIndex.of([select("/g", ["a", "b"]), number("/y")])
    result = compare(frame, fields, "/y", "/g", method="kruskal")
    assert result.statistic == pytest.approx(4.5)
    assert result.p_value == pytest.approx(stats.chi2.sf(4.5, 1))
    assert result.effect.name == "epsilon_squared" and result.effect.value == pytest.approx(4.5 / 6)


def test_small_non_normal_groups_choose_kruskal():
    rng = np.random.default_rng(5)
    skewed = np.concatenate([rng.exponential(1, 15) ** 3, rng.exponential(1, 15) ** 3 + 1])
    frame = pl.DataFrame({"/g": ["a"] * 15 + ["b"] * 15, "/y": skewed})
    fields = FieldIndex.of([select("/g", ["a", "b"]), number("/y")])
    result = compare(frame, fields, "/y", "/g")
    assert result.method == "kruskal" and "Shapiro" in result.reason
    assert result.effect.ci_low is not None and result.effect.ci_high is not None
    assert result.effect.ci_low <= result.effect.value <= result.effect.ci_high


def test_welch_needs_exactly_two_groups(data):
    frame, fields = data
    with pytest.raises(AnalysisError):
        compare(frame, fields, "/score", "/group", method="welch")


# --- correlations --------------------------------------------------------------------------


def test_pearson_and_spearman_with_fisher_z_intervals(data):
    frame, fields = data
    pearson = correlate(frame, fields, ["/age", "/income", "/score"])
    assert [(c.x, c.y) for c in pearson] == [("/age", "/income"), ("/age", "/score"), ("/income", "/score")]
    pdf = frame.to_pandas()
    first = pearson[0]
    r = np.corrcoef(pdf["/age"], pdf["/income"])[0, 1]
    n = len(pdf)
    assert first.r == pytest.approx(r) and first.n == n
    t = r * math.sqrt((n - 2) / (1 - r * r))
    assert first.p_value == pytest.approx(2 * stats.t.sf(abs(t), n - 2), rel=1e-6)
    z, se = math.atanh(r), 1 / math.sqrt(n - 3)
    assert first.ci_low == pytest.approx(math.tanh(z - 1.959963984540054 * se))
    assert first.ci_high == pytest.approx(math.tanh(z + 1.959963984540054 * se))
    spearman = correlate(frame, fields, ["/age", "/income"], method="spearman")[0]
    rho = pdf["/age"].rank().corr(pdf["/income"].rank())
    assert spearman.r == pytest.approx(rho)
    se_s = math.sqrt((1 + rho * rho / 2) / (n - 3))
    assert spearman.ci_low == pytest.approx(math.tanh(math.atanh(rho) - 1.959963984540054 * se_s))


def test_hand_verified_perfect_and_missing_pairs():
    frame = pl.DataFrame({"/x": [1.0, 2, 3, 4, None], "/y": [2.0, 4, 6, 8, 10]})
    fields = FieldIndex.of([number("/x"), number("/y")])
    (result,) = correlate(frame, fields, ["/x", "/y"])
    assert result.n == 4 and result.r == pytest.approx(1.0)


# --- proportions and means -----------------------------------------------------------------


def test_proportions_get_wilson_intervals(data):
    frame, fields = data
    result = estimate(frame, fields, "/group")
    assert result.method == "wilson" and result.n == frame.height
    for est in result.estimates:
        count = int((frame["/group"] == est.category).sum())
        low, high = proportion_confint(count, frame.height, method="wilson")
        assert est.n == count and est.estimate == pytest.approx(count / frame.height)
        assert (est.ci_low, est.ci_high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))


def test_hand_verified_wilson_interval():
    # 8 of 10: Wilson 95 % = (0.4902, 0.9433) (Newcombe 1998, table I style values).
    frame = pl.DataFrame({"/a": ["y"] * 8 + ["n"] * 2})
    result = estimate(frame, FieldIndex.of([select("/a", ["y", "n"])]), "/a")
    yes = result.estimates[0]
    assert (round(yes.ci_low, 4), round(yes.ci_high, 4)) == (0.4902, 0.9433)


def test_select_multiple_proportions_are_shares_of_respondents(data):
    frame, fields = data
    result = estimate(frame, fields, "/crops")
    maize = next(e for e in result.estimates if e.category == "maize")
    chose = sum("maize" in v.split() for v in frame["/crops"].to_list())
    assert maize.n == chose and maize.estimate == pytest.approx(chose / frame.height)


def test_mean_gets_a_t_interval(data):
    frame, fields = data
    result = estimate(frame, fields, "/score")
    (mean,) = result.estimates
    reference = DescrStatsW(frame["/score"].to_numpy())
    assert mean.estimate == pytest.approx(reference.mean)
    assert (mean.ci_low, mean.ci_high) == tuple(pytest.approx(v) for v in reference.tconfint_mean())


# --- multiple testing ----------------------------------------------------------------------


def test_notable_crosstabs_adjust_p_values_with_benjamini_hochberg():
    rng = np.random.default_rng(2)
    n = 800
    a = rng.choice(["x", "y"], n)
    linked = np.where(rng.uniform(size=n) < 0.8, a, rng.choice(["x", "y"], n))
    columns = {"/a": a, "/b": linked, **{f"/n{i}": rng.choice(["p", "q", "r"], n) for i in range(4)}}
    frame = pl.DataFrame(columns)
    fields = FieldIndex.of(
        [select("/a", ["x", "y"]), select("/b", ["x", "y"])]
        + [select(f"/n{i}", list("pqr")) for i in range(4)]
    )
    screening = notable_crosstabs(frame, fields)
    assert screening.tested == 15
    assert [(s.row_field, s.col_field) for s in screening.notable] == [("/a", "/b")]
    pairs = [("/a", "/b")] + [
        (x, y) for x, y in itertools.combinations(list(columns), 2) if (x, y) != ("/a", "/b")
    ]
    p_values = {pair: crosstab(frame, fields, *pair).test.p_value for pair in pairs}  # type: ignore[union-attr]
    ordered = list(p_values)
    _, q, _, _ = multipletests([p_values[p] for p in ordered], method="fdr_bh")
    assert screening.notable[0].q_value == pytest.approx(q[0], rel=1e-9)
