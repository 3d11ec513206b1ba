"""Crosstabulation of two categorical questions with a test of independence.

Chi-square (Pearson, no continuity correction) when expected counts are large enough
(Cochran's rule: no expected count below 1 and at most 20 % below 5), otherwise Fisher's
exact test (exact for 2x2, the exact rxc test through SciPy otherwise). Cramér's V measures
the strength. Small cells can be suppressed for disclosure control (the suppressed counts
and their percentages are withheld; margins stay, so a suppressed cell of a row with one
suppressed cell could be recovered by subtraction: callers publishing tables should also
suppress a second cell, which this function reports but does not choose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

from odk_mcp.services.analytics.domain.categorical import answers
from odk_mcp.services.analytics.domain.fields import FieldIndex, Kind, category_order, kind_of
from odk_mcp.services.forms import Field

TestChoice = Literal["auto", "chi2", "fisher", "none"]
FISHER_RESAMPLES = 9999


@dataclass(frozen=True)
class IndependenceTest:
    name: Literal["chi2", "fisher"]
    statistic: float
    p_value: float
    dof: int | None
    reason: str


@dataclass(frozen=True)
class Crosstab:
    row_field: str
    col_field: str
    rows: list[str]
    cols: list[str]
    counts: list[list[int | None]]
    row_percent: list[list[float | None]]
    col_percent: list[list[float | None]]
    row_totals: list[int]
    col_totals: list[int]
    n: int
    missing: int
    expected_min: float | None
    test: IndependenceTest | None
    cramers_v: float | None
    suppressed_cells: int
    notes: list[str]


def contingency(
    frame: pl.DataFrame, fields: FieldIndex, row: str, col: str
) -> tuple[np.ndarray, list[str], list[str], int, bool]:
    """The rxc count table of two categorical fields, their categories, the number of
    submissions with either answer missing, and whether a select_multiple was exploded."""
    kinds = (Kind.CATEGORICAL, Kind.MULTIPLE)
    row_field = fields.require(row, kinds, "row variable")
    col_field = fields.require(col, kinds, "column variable")
    multiple = kind_of(row_field) is Kind.MULTIPLE or kind_of(col_field) is Kind.MULTIPLE
    if multiple:
        left = answers(frame, row, kind_of(row_field) is Kind.MULTIPLE).rename({"value": "r"})
        right = answers(frame, col, kind_of(col_field) is Kind.MULTIPLE).rename({"value": "c"})
        joined = left.join(right, on="__row", how="inner")
        answered = joined.select(pl.col("__row").n_unique()).item() if joined.height else 0
        grouped = joined.group_by("r", "c").len()
    else:
        both = frame.select(
            pl.col(row).cast(pl.String).str.strip_chars().alias("r"),
            pl.col(col).cast(pl.String).str.strip_chars().alias("c"),
        ).filter(
            pl.col("r").is_not_null() & (pl.col("r") != "") & pl.col("c").is_not_null() & (pl.col("c") != "")
        )
        answered = both.height
        grouped = both.group_by("r", "c").len()
    table, row_cats, col_cats = table_of(grouped, row_field, col_field)
    return table, row_cats, col_cats, frame.height - answered, multiple


def table_of(
    grouped: pl.DataFrame, row_field: Field, col_field: Field
) -> tuple[np.ndarray, list[str], list[str]]:
    """The count table from (r, c, count) rows of answered pairs, in the form's choice order."""
    row_cats = category_order(row_field, grouped["r"].unique().to_list())
    col_cats = category_order(col_field, grouped["c"].unique().to_list())
    table = np.zeros((len(row_cats), len(col_cats)), dtype=np.int64)
    r_index = {v: i for i, v in enumerate(row_cats)}
    c_index = {v: i for i, v in enumerate(col_cats)}
    for r, c, count in grouped.iter_rows():
        table[r_index[r], c_index[c]] = count
    return table, row_cats, col_cats


def crosstab_of_counts(
    counts: pl.DataFrame,
    fields: FieldIndex,
    row: str,
    col: str,
    test: TestChoice = "auto",
    suppress_below: int | None = None,
) -> Crosstab:
    """A crosstab of two single-choice questions from counts already grouped (by PostgreSQL):
    columns r, c (null when unanswered) and n."""
    row_field = fields.require(row, [Kind.CATEGORICAL], "row variable")
    col_field = fields.require(col, [Kind.CATEGORICAL], "column variable")
    answered = counts.filter(pl.col("r").is_not_null() & pl.col("c").is_not_null())
    table, row_cats, col_cats = table_of(answered, row_field, col_field)
    missing = int(counts["n"].sum()) - int(answered["n"].sum())
    return _result(table, row_cats, col_cats, missing, False, row, col, test, suppress_below)


def independence_test(table: np.ndarray, choice: TestChoice) -> tuple[IndependenceTest | None, float | None]:
    """The test asked for (or the appropriate one) and the smallest expected count."""
    rows, cols = table.shape
    if rows < 2 or cols < 2 or choice == "none":
        return None, None
    expected = stats.contingency.expected_freq(table)
    small = float(np.mean(expected < 5))
    cochran = expected.min() >= 1 and small <= 0.2
    use = choice if choice != "auto" else ("chi2" if cochran else "fisher")
    if use == "chi2":
        chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
        reason = "asked for" if choice == "chi2" else "expected counts are large enough (Cochran's rule)"
        return IndependenceTest("chi2", float(chi2), float(p), int(dof), reason), float(expected.min())
    reason = "asked for" if choice == "fisher" else f"{small:.0%} of expected counts are below 5"
    if (rows, cols) == (2, 2):
        result = stats.fisher_exact(table)
    else:
        # rxc: SciPy's Monte Carlo over tables with the observed margins, seeded so the
        # same data always gives the same p-value.
        method = stats.MonteCarloMethod(n_resamples=FISHER_RESAMPLES, rng=np.random.default_rng(0))
        result = stats.fisher_exact(table, method=method)
        reason += f"; p-value by Monte Carlo over {FISHER_RESAMPLES:,} tables"
    # SciPy answers some r x 2 tables with one-element arrays rather than scalars.
    statistic, pvalue = (float(np.asarray(v).reshape(-1)[0]) for v in (result.statistic, result.pvalue))
    return IndependenceTest("fisher", statistic, pvalue, None, reason), float(expected.min())


def cramers_v(table: np.ndarray) -> float | None:
    """Cramér's V (uncorrected) from Pearson's chi-square."""
    rows, cols = table.shape
    n = table.sum()
    if rows < 2 or cols < 2 or n == 0:
        return None
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    return float(np.sqrt(chi2 / (n * (min(rows, cols) - 1))))


def crosstab(
    frame: pl.DataFrame,
    fields: FieldIndex,
    row: str,
    col: str,
    test: TestChoice = "auto",
    suppress_below: int | None = None,
) -> Crosstab:
    table, row_cats, col_cats, missing, multiple = contingency(frame, fields, row, col)
    return _result(table, row_cats, col_cats, missing, multiple, row, col, test, suppress_below)


def _result(
    table: np.ndarray,
    row_cats: list[str],
    col_cats: list[str],
    missing: int,
    multiple: bool,
    row: str,
    col: str,
    test: TestChoice,
    suppress_below: int | None,
) -> Crosstab:
    keep_rows = table.sum(axis=1) > 0
    keep_cols = table.sum(axis=0) > 0
    table = table[keep_rows][:, keep_cols]
    notes: list[str] = []
    if multiple:
        notes.append("A select_multiple question counts each chosen value; no test of independence applies.")
        result, expected_min, v = None, None, None
    else:
        result, expected_min = independence_test(table, test)
        v = cramers_v(table)
    n = int(table.sum())
    row_totals = table.sum(axis=1)
    col_totals = table.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        row_pct = 100.0 * table / row_totals[:, None]
        col_pct = 100.0 * table / col_totals[None, :]
    hidden = np.zeros(table.shape, dtype=bool)
    if suppress_below is not None:
        hidden = (table > 0) & (table < suppress_below)
        if hidden.any():
            notes.append(f"Cells with fewer than {suppress_below} answers are suppressed.")

    return Crosstab(
        row_field=row,
        col_field=col,
        rows=[c for c, k in zip(row_cats, keep_rows, strict=True) if k],
        cols=[c for c, k in zip(col_cats, keep_cols, strict=True) if k],
        counts=[
            [None if h else int(x) for x, h in zip(r, hr, strict=True)]
            for r, hr in zip(table, hidden, strict=True)
        ],
        row_percent=_percent_cells(row_pct, hidden),
        col_percent=_percent_cells(col_pct, hidden),
        row_totals=[int(x) for x in row_totals],
        col_totals=[int(x) for x in col_totals],
        n=n,
        missing=missing,
        expected_min=expected_min,
        test=result,
        cramers_v=v,
        suppressed_cells=int(hidden.sum()),
        notes=notes,
    )


def _percent_cells(values: np.ndarray, hidden: np.ndarray) -> list[list[float | None]]:
    return [
        [None if h or not np.isfinite(x) else float(x) for x, h in zip(r, hr, strict=True)]
        for r, hr in zip(values, hidden, strict=True)
    ]
