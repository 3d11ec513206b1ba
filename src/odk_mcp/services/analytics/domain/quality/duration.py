"""Interview duration from the `start`/`end` metadata: speeding and impossible durations.

A speeder finishes faster than `speed_fraction` of the form's median interview (or faster
than an absolute minimum, if set); an interview that ends before it starts means a device
clock changed or the data was tampered with.
"""

from __future__ import annotations

import polars as pl

from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, FieldIndex
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig, Severity
from odk_mcp.services.analytics.domain.quality.timestamps import instant_in, metadata_field

DURATION = "__duration"


def durations(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> pl.Series | None:
    """Seconds from start to end per row (null where either is missing), or None without both fields."""
    start = metadata_field(fields, "start", config.start_field)
    end = metadata_field(fields, "end", config.end_field)
    if start is None or end is None or start.path not in frame.columns or end.path not in frame.columns:
        return None
    seconds = (instant_in(frame, end.path) - instant_in(frame, start.path)).dt.total_microseconds() / 1e6
    return frame.select(seconds.alias(DURATION)).to_series()


def median_duration(seconds: pl.Series) -> float | None:
    """The median of the non-negative durations (the form's typical interview)."""
    known = seconds.drop_nulls()
    positive = known.filter(known >= 0)
    return float(positive.median()) if positive.len() else None  # type: ignore[arg-type]


def duration_findings(
    frame: pl.DataFrame, seconds: pl.Series, config: QualityConfig, median: float | None = None
) -> list[Finding]:
    """Speeding against `median` (the form's, from its last full scan) or the frame's own."""
    data = (
        frame.select(SUBMISSION_ID)
        .with_columns(seconds.alias(DURATION))
        .filter(pl.col(DURATION).is_not_null())
    )
    if data.height == 0:
        return []
    positive = data.filter(pl.col(DURATION) >= 0)
    if median is None:
        median = median_duration(seconds) or 0.0
    threshold = config.speed_fraction * median
    if config.min_duration_seconds is not None:
        threshold = max(threshold, config.min_duration_seconds)
    findings: list[Finding] = []
    if config.enabled("negative_duration"):
        for sid, value in data.filter(pl.col(DURATION) < 0).iter_rows():
            findings.append(
                Finding(
                    "negative_duration",
                    Severity.HIGH,
                    f"The interview ends {-value:.0f} s before it starts.",
                    {"duration_seconds": value},
                    submission_id=sid,
                )
            )
    if config.enabled("speeding") and median > 0:
        for sid, value in positive.filter(pl.col(DURATION) < threshold).iter_rows():
            severity = Severity.HIGH if value < threshold / 2 else Severity.MEDIUM
            findings.append(
                Finding(
                    "speeding",
                    severity,
                    f"Interview took {value:.0f} s, under {threshold:.0f} s "
                    f"({config.speed_fraction:.0%} of the median {median:.0f} s).",
                    {"duration_seconds": value, "median_seconds": median, "threshold_seconds": threshold},
                    submission_id=sid,
                )
            )
    return findings
