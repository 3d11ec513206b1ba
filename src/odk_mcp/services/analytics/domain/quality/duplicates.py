"""Exact and near-duplicate submissions.

Exact: the same normalised answers (trimmed, lower-cased) to every answer question, for
submissions that answered at least `MIN_ANSWERED` of them. Near: at least
`near_duplicate_similarity` of the questions either submission answered have the same answer.
Candidates for near duplicates come from locality-sensitive hashing over answer bands (the
questions are shuffled, seeded, into bands of `BAND` questions; two submissions identical on
any band become a candidate pair), so the cost grows with the submissions, not their square.
The later submission of a pair is flagged, naming the earlier one.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, FieldIndex
from odk_mcp.services.analytics.domain.quality.answers import answer_fields, normalised
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig, Severity

MIN_ANSWERED = 3
MIN_NEAR_QUESTIONS = 8
BAND = 4
MAX_BUCKET = 25  # bands shared by more submissions than this are too common to be evidence


def duplicate_findings(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> list[Finding]:
    paths = [f.path for f in answer_fields(fields, frame)]
    if not paths:
        return []
    norm = frame.select(pl.col(SUBMISSION_ID), *[normalised(p) for p in paths]).with_row_index("__row")
    exact_rows: set[int] = set()
    findings: list[Finding] = []
    if config.enabled("duplicate"):
        findings, exact_rows = _exact(norm, paths)
    if config.enabled("near_duplicate") and len(paths) >= MIN_NEAR_QUESTIONS:
        findings += _near(norm, paths, config, exact_rows)
    return findings


def _exact(norm: pl.DataFrame, paths: list[str]) -> tuple[list[Finding], set[int]]:
    answered = pl.sum_horizontal(pl.col(p).is_not_null() for p in paths)
    keyed = norm.filter(answered >= MIN_ANSWERED).select(
        "__row", SUBMISSION_ID, pl.struct(paths).hash(seed=0).alias("key")
    )
    groups = (
        keyed.group_by("key")
        .agg(pl.col("__row"), pl.col(SUBMISSION_ID))
        .filter(pl.col("__row").list.len() > 1)
    )
    findings = []
    rows: set[int] = set()
    for _, members, ids in groups.iter_rows():
        first = ids[0]
        for row, sid in zip(members[1:], ids[1:], strict=True):
            rows.add(row)
            findings.append(
                Finding(
                    "duplicate",
                    Severity.HIGH,
                    f"Every answer is identical to submission {first}.",
                    {"duplicate_of": first, "group_size": len(ids)},
                    submission_id=sid,
                )
            )
    return findings, rows


def _codes(norm: pl.DataFrame, paths: list[str]) -> np.ndarray:
    """Each answer column as integer codes (-1 for no answer), n x m."""
    columns = [
        norm.select(pl.col(p).cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1))
        .to_series()
        .to_numpy()
        for p in paths
    ]
    return np.stack(columns, axis=1)


def _near(norm: pl.DataFrame, paths: list[str], config: QualityConfig, exact_rows: set[int]) -> list[Finding]:
    order = np.random.default_rng(config.random_state).permutation(len(paths))
    bands = [[paths[i] for i in order[s : s + BAND]] for s in range(0, len(paths) - BAND + 1, BAND)]
    pairs = []
    for band in bands:
        filled = pl.sum_horizontal(pl.col(p).is_not_null() for p in band)
        keyed = norm.filter(filled >= (BAND + 1) // 2).select(
            "__row", pl.struct(band).hash(seed=1).alias("key")
        )
        sizes = keyed.group_by("key").len().filter((pl.col("len") > 1) & (pl.col("len") <= MAX_BUCKET))
        keyed = keyed.join(sizes.select("key"), on="key")
        joined = keyed.join(keyed, on="key", suffix="_b").filter(pl.col("__row") < pl.col("__row_b"))
        pairs.append(joined.select("__row", "__row_b"))
    if not pairs:
        return []
    candidates = pl.concat(pairs).unique()
    if candidates.height == 0:
        return []
    codes = _codes(norm, paths)
    left, right = candidates["__row"].to_numpy(), candidates["__row_b"].to_numpy()
    a, b = codes[left], codes[right]
    either = ((a >= 0) | (b >= 0)).sum(axis=1)
    same = ((a == b) & (a >= 0)).sum(axis=1)
    similarity = np.divide(same, either, out=np.zeros(len(same)), where=either > 0)
    keep = (
        (similarity >= config.near_duplicate_similarity) & (similarity < 1.0) & (either >= MIN_NEAR_QUESTIONS)
    )
    ids = norm[SUBMISSION_ID].to_numpy()
    best: dict[int, tuple[float, int, list[str]]] = {}
    for i in np.flatnonzero(keep):
        earlier, later = int(left[i]), int(right[i])
        if later in exact_rows:
            continue
        differing = [paths[j] for j in np.flatnonzero(a[i] != b[i])]
        if later not in best or similarity[i] > best[later][0]:
            best[later] = (float(similarity[i]), earlier, differing)
    return [
        Finding(
            "near_duplicate",
            Severity.MEDIUM,
            f"{sim:.0%} of answers match submission {ids[earlier]}; differing: {', '.join(diff[:5])}.",
            {
                "near_duplicate_of": int(ids[earlier]),
                "similarity": round(sim, 4),
                "differing_fields": diff[:20],
            },
            submission_id=int(ids[later]),
        )
        for later, (sim, earlier, diff) in sorted(best.items())
    ]
