"""Submissions over time: counts per day or ISO week, overall or per enumerator / form version.

Periods are calendar days or Monday-starting weeks of `created_at` in the requested time
zone; periods without submissions between the first and last appear with zero, so a chart
shows a pause in fieldwork as a gap to zero rather than a straight line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.fields import CREATED_AT, FORM_VERSION, SUBMITTER

Interval = Literal["day", "week"]
SplitBy = Literal["none", "enumerator", "form_version"]
_SPLIT_COLUMNS = {"enumerator": SUBMITTER, "form_version": FORM_VERSION}
MAX_SERIES = 200


@dataclass(frozen=True)
class Series:
    key: str | None  # the enumerator id or form version; None for all submissions
    counts: list[int]
    total: int


@dataclass(frozen=True)
class TimeSeries:
    interval: Interval
    split_by: SplitBy
    time_zone: str
    periods: list[date]
    series: list[Series]
    total: int


def timeseries(
    frame: pl.DataFrame, interval: Interval = "day", split_by: SplitBy = "none", time_zone: str = "UTC"
) -> TimeSeries:
    every = {"day": "1d", "week": "1w"}[interval]
    check_time_zone(time_zone)
    local = pl.col(CREATED_AT).dt.convert_time_zone(time_zone)
    key = pl.col(_SPLIT_COLUMNS[split_by]).cast(pl.String) if split_by != "none" else pl.lit(None, pl.String)
    counted = (
        frame.select(local.dt.truncate(every).dt.date().alias("period"), key.alias("key"))
        .group_by("period", "key")
        .len()
    )
    return timeseries_of_counts(counted, interval, split_by, time_zone)


def check_time_zone(time_zone: str) -> None:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise AnalysisError("unknownTimeZone", f"Unknown time zone {time_zone!r}.") from error


def timeseries_of_counts(
    counted: pl.DataFrame, interval: Interval, split_by: SplitBy, time_zone: str
) -> TimeSeries:
    """Series from counts already grouped by (period: date, key: str | null, len)."""
    every = {"day": "1d", "week": "1w"}[interval]
    if counted.height == 0:
        return TimeSeries(interval, split_by, time_zone, [], [], 0)
    periods = counted.select(pl.date_range(pl.col("period").min(), pl.col("period").max(), every)).to_series()
    totals = (
        counted.group_by("key")
        .agg(pl.col("len").sum().alias("total"))
        .sort("total", "key", descending=[True, False])
    )
    if totals.height > MAX_SERIES:
        raise AnalysisError("tooManySeries", f"More than {MAX_SERIES} series; filter the submissions first.")
    grid = totals.select("key").join(pl.DataFrame({"period": periods}), how="cross")
    full = grid.join(counted, on=["key", "period"], how="left", nulls_equal=True).with_columns(
        pl.col("len").fill_null(0)
    )
    series = []
    for (k,), part in full.sort("period").partition_by("key", as_dict=True, maintain_order=True).items():
        counts = part["len"].to_list()
        series.append(Series(k, counts, sum(counts)))
    order = {k: i for i, k in enumerate(totals["key"].to_list())}
    series.sort(key=lambda s: order[s.key])
    return TimeSeries(interval, split_by, time_zone, periods.to_list(), series, int(totals["total"].sum()))
