"""Per-question summaries computed by Polars over the columnar cache's frames, answering
exactly what `summaries_sql` computes in PostgreSQL (tests hold the two engines equal):

- answered: the answer is present and not JSON null (the cache's text column is not null);
- numeric statistics over the values that are JSON numbers (the number column), quantiles
  interpolated linearly like `percentile_cont`, histogram bins as `width_bucket` assigns them;
- date ranges over the answers PostgreSQL reads as dates / date-times (parsed when the cache
  is written, in UTC like the server's sessions);
- single-choice counts per answer text; multiple-choice counts per space-separated value.

Loaded on the first summary (Polars).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from odk_mcp.services.aggregation.columns import ROOT, number_column, text_column, time_column
from odk_mcp.services.aggregation.domain.summary import (
    DATES,
    HISTOGRAM_BINS,
    NUMERIC,
    QUANTILES,
    choice_counts,
    histogram,
    is_select_one,
    numeric,
    question,
)
from odk_mcp.services.forms import Field

_SEPARATOR = r"[^ \t\n\r\f\v]+"  # one ticked value: a run of anything but whitespace


def table_columns(fields: Sequence[Field]) -> list[str]:
    """The cache columns a table's summary reads."""
    out = []
    for f in fields:
        out.append(text_column(f.path))
        if f.type in NUMERIC:
            out.append(number_column(f.path))
        elif f.type in DATES:
            out.append(time_column(f.path))
    return out


def summarize(
    frames: dict[str, pl.DataFrame],
    tables: dict[str, list[Field]],
    language: str | None,
) -> tuple[int, list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(submissions, submissions per day, questions by path) of the selected submissions."""
    root = frames[ROOT]
    days = (
        root.select(pl.from_epoch(pl.col("created_at"), time_unit="us").dt.date().alias("day"))
        .group_by("day")
        .len()
        .sort("day")
    )
    per_day = [{"date": d.isoformat(), "count": int(n)} for d, n in days.iter_rows()]
    out: dict[str, dict[str, Any]] = {}
    for path, fields in tables.items():
        _summarise_table(frames[path], fields, out, language)
    return root.height, per_day, out


def _instant(f: Field, value: int | None) -> date | datetime | None:
    """A time column's value: days since 1970-01-01 (date) or microseconds (dateTime, UTC)."""
    if value is None:
        return None
    if f.type == "date":
        return _EPOCH.date() + timedelta(days=value)
    return _EPOCH + timedelta(microseconds=value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _summarise_table(
    frame: pl.DataFrame, fields: Sequence[Field], out: dict[str, dict[str, Any]], language: str | None
) -> None:
    aggregates: list[pl.Expr] = []
    for i, f in enumerate(fields):
        text = pl.col(text_column(f.path))
        aggregates.append(text.count().alias(f"a{i}"))
        if f.type in NUMERIC:
            value = pl.col(number_column(f.path))
            aggregates += [
                value.count().alias(f"c{i}"),
                value.mean().alias(f"mean{i}"),
                value.std(ddof=1).alias(f"sd{i}"),
                value.min().alias(f"min{i}"),
                value.max().alias(f"max{i}"),
                *(
                    value.quantile(q, interpolation="linear").alias(f"q{i}_{k}")
                    for k, q in enumerate(QUANTILES)
                ),
            ]
        elif f.type in DATES:
            value = pl.col(time_column(f.path))
            aggregates += [value.min().alias(f"min{i}"), value.max().alias(f"max{i}")]
    stats = frame.select(aggregates).row(0, named=True) if aggregates else {}
    instances = frame.height
    for i, f in enumerate(fields):
        entry = question(f, instances, int(stats[f"a{i}"]), language)
        if f.type in NUMERIC:
            count = int(stats[f"c{i}"])
            quantiles = [stats[f"q{i}_{k}"] for k in range(len(QUANTILES))] if count else None
            sd = stats[f"sd{i}"] if count > 1 else None
            entry["numeric"] = numeric(
                count, stats[f"mean{i}"], sd, stats[f"min{i}"], stats[f"max{i}"], quantiles
            )
        elif f.type in DATES:
            low, high = _instant(f, stats[f"min{i}"]), _instant(f, stats[f"max{i}"])
            entry["range"] = {
                "min": low.isoformat() if low is not None else None,
                "max": high.isoformat() if high is not None else None,
            }
        out[f.path] = entry
    _grouped(frame, fields, out, language)


def _grouped(
    frame: pl.DataFrame, fields: Sequence[Field], out: dict[str, dict[str, Any]], language: str | None
) -> None:
    """Choice counts and histogram bins, one grouping per question, collected in parallel."""
    queries: list[tuple[Field, str, pl.LazyFrame]] = []
    lazy = frame.lazy()
    for f in fields:
        text = pl.col(text_column(f.path))
        if f.select_multiple:
            values = text.str.strip_chars(" ").str.extract_all(_SEPARATOR).alias("g")
            query = lazy.select(values).explode("g").drop_nulls("g").group_by("g").len()
            queries.append((f, "choice", query))
        elif is_select_one(f):
            query = lazy.select(text.alias("g")).drop_nulls("g").group_by("g").len()
            queries.append((f, "choice", query))
        elif f.type in NUMERIC and out[f.path]["numeric"]["min"] is not None:
            low, high = out[f.path]["numeric"]["min"], out[f.path]["numeric"]["max"]
            top = high if high > low else low + 1.0
            value = pl.col(number_column(f.path))
            # PostgreSQL's width_bucket: count * ((x - low) / (top - low)) truncated, kept
            # below count, plus one; x >= top is bin count + 1, folded into the last bin.
            inside = (
                (HISTOGRAM_BINS * ((value - low) / (top - low))).floor().clip(upper_bound=HISTOGRAM_BINS - 1)
            )
            bucket = pl.when(value >= top).then(HISTOGRAM_BINS).otherwise(inside.cast(pl.Int64) + 1)
            query = lazy.select(bucket.alias("g")).drop_nulls("g").group_by("g").len()
            queries.append((f, "bin", query))
    results = pl.collect_all([q for *_, q in queries]) if queries else []
    for (f, kind, _), counted in zip(queries, results, strict=True):
        found = {key: int(n) for key, n in counted.iter_rows()}
        entry = out[f.path]
        if kind == "choice":
            choice_counts(entry, f, {str(k): v for k, v in found.items()}, language)
        else:
            summary = entry["numeric"]
            summary["histogram"] = histogram(summary["min"], summary["max"], found)
