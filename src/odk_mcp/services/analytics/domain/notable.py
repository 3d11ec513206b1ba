"""Notable associations among a form's single-choice questions, controlling false discoveries.

Every pair of select_one questions is crosstabulated and tested (chi-square or Fisher, as in
`crosstab`); p-values are adjusted with Benjamini-Hochberg across all pairs tested, so a
report that lists "associations with q < 0.05" expects at most 5 % of them to be chance
findings. Weak associations (Cramér's V below `min_v`) are left out even when significant,
because with thousands of submissions trivial differences test significant.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl
from scipy import stats

from odk_mcp.services.analytics.domain.crosstab import contingency, cramers_v, independence_test
from odk_mcp.services.analytics.domain.fields import FieldIndex, Kind

MAX_QUESTIONS = 25
MAX_CATEGORIES = 30


@dataclass(frozen=True)
class Association:
    row_field: str
    col_field: str
    test: str
    p_value: float
    q_value: float
    cramers_v: float
    n: int


@dataclass(frozen=True)
class Screening:
    tested: int
    questions: list[str]
    skipped: list[str]  # questions left out (too many categories, or beyond MAX_QUESTIONS)
    notable: list[Association]


def notable_crosstabs(
    frame: pl.DataFrame, fields: FieldIndex, alpha: float = 0.05, min_v: float = 0.1, min_n: int = 30
) -> Screening:
    candidates = [
        f for f in fields.of_kind(Kind.CATEGORICAL) if 1 < len(f.choices) <= MAX_CATEGORIES or not f.choices
    ]
    skipped = [f.path for f in fields.of_kind(Kind.CATEGORICAL) if f not in candidates]
    questions = [f.path for f in candidates[:MAX_QUESTIONS]]
    skipped += [f.path for f in candidates[MAX_QUESTIONS:]]
    tested: list[tuple[str, str, str, float, float, int]] = []
    for row, col in combinations(questions, 2):
        table, _, _, _, _ = contingency(frame, fields, row, col)
        table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
        if table.shape[0] < 2 or table.shape[1] < 2 or table.shape[1] > MAX_CATEGORIES or table.sum() < min_n:
            continue
        test, _ = independence_test(table, "auto")
        v = cramers_v(table)
        if test is None or v is None:
            continue
        tested.append((row, col, test.name, test.p_value, v, int(table.sum())))
    if not tested:
        return Screening(0, questions, skipped, [])
    q_values = stats.false_discovery_control(np.array([t[3] for t in tested]), method="bh")
    notable = [
        Association(row, col, name, p, float(q), v, n)
        for (row, col, name, p, v, n), q in zip(tested, q_values, strict=True)
        if q < alpha and v >= min_v
    ]
    notable.sort(key=lambda a: (-a.cramers_v, a.q_value))
    return Screening(len(tested), questions, skipped, notable)
