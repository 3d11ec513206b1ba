"""Checking newly received submissions on their own, against the form's last full scan.

Rules that judge a submission by itself run on every submission event: straight-lining,
negative durations, impossible dates, points outside the project's area, and - against the
baseline a full scan stored (the median interview, each numeric question's spread) -
speeding and outliers. Rules that compare submissions with each other (duplicates, anomaly
scores, GPS clusters and repeats, enumerator rules) need the whole form and run in full scans
(on demand, or `POST …/analytics/quality`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import polars as pl

from odk_mcp.services.analytics.domain.fields import FieldIndex
from odk_mcp.services.analytics.domain.quality.dates import date_findings
from odk_mcp.services.analytics.domain.quality.duration import duration_findings, durations
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig
from odk_mcp.services.analytics.domain.quality.gps import gps_findings
from odk_mcp.services.analytics.domain.quality.outliers import Spread, outlier_findings
from odk_mcp.services.analytics.domain.quality.straightlining import straightlining_findings

SELF_RULES = ("straightlining", "negative_duration", "future_date", "date_before_form", "gps_outside_area")
BASELINE_RULES = ("speeding", "outlier")


@dataclass(frozen=True)
class Baseline:
    median_duration_seconds: float | None
    spreads: dict[str, Spread]

    def to_json(self) -> dict[str, Any]:
        return {
            "median_duration_seconds": self.median_duration_seconds,
            "spreads": {k: asdict(v) for k, v in self.spreads.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            data.get("median_duration_seconds"), {k: Spread(**v) for k, v in data.get("spreads", {}).items()}
        )


def check_submissions(
    frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig, baseline: Baseline | None
) -> tuple[list[str], list[Finding]]:
    """The rules checked and the findings for a few submissions (usually one)."""
    rules = [*SELF_RULES, *(BASELINE_RULES if baseline is not None else ())]
    only = replace(config, rules=frozenset(r for r in rules if config.enabled(r)))
    found = straightlining_findings(frame, fields, only) + date_findings(frame, fields, only)
    found += [f for f in gps_findings(frame, fields, only) if f.rule == "gps_outside_area"]
    seconds = durations(frame, fields, only)
    if seconds is not None:
        median = baseline.median_duration_seconds if baseline is not None else None
        found += duration_findings(frame, seconds, only, median)
    if baseline is not None:
        found += outlier_findings(frame, fields, only, baseline.spreads)
    return sorted(only.rules or ()), found
