"""Exact and near-duplicate submissions.

Exact: the same normalised answers (trimmed, lower-cased) to every answer question, for
submissions that answered at least `MIN_ANSWERED` of them. Near: at least
`near_duplicate_similarity` of the questions either submission answered have the same answer.
Candidates for near duplicates come from locality-sensitive hashing over answer bands (the
questions are shuffled, seeded, into bands of `BAND` questions; two submissions identical on
any band become a candidate pair), so the cost grows with the submissions, not their square.
The later submission of a pair is flagged, naming the earlier one.

Every answer is first reduced to a 64-bit key (0 = no answer): text is normalised once per
distinct value, numbers are hashed as they are. Rows, bands and pairs are then compared as
integer arrays, and an exact group is confirmed on the keys themselves, so two different
answers sharing a hash would have to collide on every question at once to be confused.
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
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd constant: combining keys keeps every bit in play


def answer_keys(frame: pl.DataFrame, paths: list[str]) -> list[np.ndarray]:
    """Per question, uint64 keys of the normalised answers; 0 where there is no answer."""
    return [_keys(frame.get_column(path)) for path in paths]


def _keys(series: pl.Series) -> np.ndarray:
    if series.dtype in (pl.String, pl.Categorical):
        text = series.cast(pl.String)
        distinct = text.unique()
        if distinct.len() * 4 < text.len():
            # Choice answers repeat a few values: normalise each distinct one once.
            table = distinct.to_frame("raw").with_columns(normalised("raw").alias("norm"))
            keyed = (
                text.to_frame("raw")
                .join(table, on="raw", how="left", maintain_order="left", nulls_equal=True)
                .get_column("norm")
            )
        else:
            keyed = text.to_frame("raw").select(normalised("raw")).to_series()
    else:
        keyed = series.cast(pl.Float64, strict=False).fill_nan(None)
    hashed = pl.select(
        pl.when(keyed.is_null()).then(pl.lit(0, pl.UInt64)).otherwise(keyed.hash(seed=7) | 1)
    ).to_series()
    return hashed.to_numpy()


def _row_hash(columns: list[np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """One uint64 per row combining its keys in order (of `rows` only, when given)."""
    out: np.ndarray | None = None
    with np.errstate(over="ignore"):
        for column in columns:
            key = column if rows is None else column[rows]
            out = key * _MIX if out is None else (out ^ key) * _MIX
            out ^= out >> np.uint64(29)
    assert out is not None
    return out


def _answered(columns: list[np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    count = np.zeros(len(columns[0]) if rows is None else len(rows), dtype=np.int32)
    for column in columns:
        count += (column if rows is None else column[rows]) != 0
    return count


def duplicate_findings(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> list[Finding]:
    paths = [f.path for f in answer_fields(fields, frame)]
    if not paths or not (config.enabled("duplicate") or config.enabled("near_duplicate")):
        return []
    keys = answer_keys(frame, paths)
    ids = frame.get_column(SUBMISSION_ID).to_numpy()
    exact_rows = np.zeros(frame.height, dtype=bool)
    findings: list[Finding] = []
    if config.enabled("duplicate"):
        findings, exact_rows = _exact(keys, ids)
    if config.enabled("near_duplicate") and len(paths) >= MIN_NEAR_QUESTIONS:
        findings += _near(keys, ids, paths, config, exact_rows)
    return findings


def _runs(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by value (stable, so oldest first within a value), with each run's start
    and length."""
    order = np.argsort(values, kind="stable")
    sorted_values, sorted_rows = values[order], rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    lengths = np.diff(np.r_[starts, len(sorted_values)])
    return sorted_rows, starts, lengths


def _exact(keys: list[np.ndarray], ids: np.ndarray) -> tuple[list[Finding], np.ndarray]:
    rows = np.flatnonzero(_answered(keys) >= MIN_ANSWERED)
    sorted_rows, starts, lengths = _runs(_row_hash(keys, rows), rows)
    flagged = np.zeros(len(ids), dtype=bool)
    findings = []
    grouped = lengths > 1
    for start, length in zip(starts[grouped].tolist(), lengths[grouped].tolist(), strict=True):
        members = sorted_rows[start : start + length]
        # Confirm on the keys: a group is the rows equal to its first member.
        same = np.ones(length, dtype=bool)
        for column in keys:
            values = column[members]
            same &= values == values[0]
        members = members[same]
        if len(members) < 2:
            continue
        first = int(ids[members[0]])
        for row in members[1:].tolist():
            flagged[row] = True
            findings.append(
                Finding(
                    "duplicate",
                    Severity.HIGH,
                    f"Every answer is identical to submission {first}.",
                    {"duplicate_of": first, "group_size": len(members)},
                    submission_id=int(ids[row]),
                )
            )
    return findings, flagged


def _band_pairs(keys: list[np.ndarray]) -> np.ndarray:
    """Pairs of rows identical on a band's questions, from buckets of 2 to MAX_BUCKET rows
    that answered at least half of the band."""
    rows = np.flatnonzero(_answered(keys) >= (BAND + 1) // 2)
    sorted_rows, starts, lengths = _runs(_row_hash(keys, rows), rows)
    keep = (lengths > 1) & (lengths <= MAX_BUCKET)
    # Only the rows of buckets kept, each tagged with its bucket.
    members = np.repeat(keep, lengths)
    bucket = np.repeat(np.arange(len(starts)), lengths)[members]
    candidates = sorted_rows[members]
    pairs = []
    for gap in range(1, MAX_BUCKET):
        a = np.flatnonzero(bucket[:-gap] == bucket[gap:])
        if len(a) == 0:
            break
        pairs.append(np.stack([candidates[a], candidates[a + gap]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def _near(
    keys: list[np.ndarray], ids: np.ndarray, paths: list[str], config: QualityConfig, exact_rows: np.ndarray
) -> list[Finding]:
    order = np.random.default_rng(config.random_state).permutation(len(paths))
    bands = [[keys[i] for i in order[s : s + BAND]] for s in range(0, len(paths) - BAND + 1, BAND)]
    found = [_band_pairs(band) for band in bands]
    candidates = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
    if len(candidates) == 0:
        return []
    n = len(ids)
    # Rows are in age order (the frame is oldest first), so min/max is (earlier, later).
    codes = np.sort(candidates.min(axis=1).astype(np.int64) * n + candidates.max(axis=1))
    codes = codes[np.r_[True, codes[1:] != codes[:-1]]]  # each pair once
    left, right = codes // n, codes % n
    either = np.zeros(len(codes), dtype=np.int32)
    same = np.zeros(len(codes), dtype=np.int32)
    for column in keys:
        a, b = column[left], column[right]
        either += (a != 0) | (b != 0)
        same += (a == b) & (a != 0)
    similarity = np.divide(same, either, out=np.zeros(len(same)), where=either > 0)
    keep = (
        (similarity >= config.near_duplicate_similarity)
        & (similarity < 1.0)
        & (either >= MIN_NEAR_QUESTIONS)
        & ~exact_rows[right]
    )
    best: dict[int, tuple[float, int]] = {}
    for i in np.flatnonzero(keep).tolist():
        earlier, later, sim = int(left[i]), int(right[i]), float(similarity[i])
        if later not in best or sim > best[later][0]:
            best[later] = (sim, earlier)
    findings = []
    for later, (sim, earlier) in sorted(best.items()):
        diff = [p for p, column in zip(paths, keys, strict=True) if column[earlier] != column[later]]
        findings.append(
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
        )
    return findings
