"""A full quality scan of a form's submissions: every enabled rule, then the enumerator table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from odk_mcp.services.analytics.domain.fields import FieldIndex
from odk_mcp.services.analytics.domain.quality.anomaly import anomaly_findings
from odk_mcp.services.analytics.domain.quality.dates import date_findings
from odk_mcp.services.analytics.domain.quality.duplicates import duplicate_findings
from odk_mcp.services.analytics.domain.quality.duration import duration_findings, durations, median_duration
from odk_mcp.services.analytics.domain.quality.enumerators import (
    EnumeratorRow,
    enumerator_findings,
    enumerator_table,
)
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig
from odk_mcp.services.analytics.domain.quality.gps import gps_findings
from odk_mcp.services.analytics.domain.quality.incremental import Baseline
from odk_mcp.services.analytics.domain.quality.outliers import outlier_findings, spreads
from odk_mcp.services.analytics.domain.quality.straightlining import straightlining_findings
from odk_mcp.services.analytics.domain.quality.timestamps import with_instants

RULES = (
    "speeding",
    "negative_duration",
    "straightlining",
    "duplicate",
    "near_duplicate",
    "outlier",
    "anomaly",
    "gps_outside_area",
    "gps_far_from_cluster",
    "gps_repeated",
    "future_date",
    "date_before_form",
    "enumerator_flag_rate",
    "enumerator_answer_pattern",
)


@dataclass(frozen=True)
class QualityScan:
    submissions: int
    findings: list[Finding]
    enumerators: list[EnumeratorRow]
    median_duration_seconds: float | None
    by_rule: dict[str, int]
    baseline: Baseline


STEPS = ("durations", "straightlining", "duplicates", "outliers", "anomaly", "gps", "dates", "enumerators")


def scan(
    frame: pl.DataFrame,
    fields: FieldIndex,
    config: QualityConfig | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> QualityScan:
    """Run the rules over a frame ordered oldest first (duplicates flag the later submission).
    `on_step(name, done, total)` is told before each group of rules (a job's progress)."""
    config = config or QualityConfig()
    step = iter(range(len(STEPS)))

    def begin(name: str) -> None:
        if on_step is not None:
            on_step(name, next(step), len(STEPS))

    begin("durations")
    frame = with_instants(frame, fields)
    seconds = durations(frame, fields, config)
    findings: list[Finding] = []
    if seconds is not None:
        findings += duration_findings(frame, seconds, config)
    begin("straightlining")
    if config.enabled("straightlining"):
        findings += straightlining_findings(frame, fields, config)
    begin("duplicates")
    findings += duplicate_findings(frame, fields, config)
    begin("outliers")
    spread = spreads(frame, fields, config)
    if config.enabled("outlier"):
        findings += outlier_findings(frame, fields, config, spread)
    begin("anomaly")
    if config.enabled("anomaly"):
        findings += anomaly_findings(frame, fields, config)
    begin("gps")
    findings += gps_findings(frame, fields, config)
    begin("dates")
    findings += date_findings(frame, fields, config)
    begin("enumerators")
    table = enumerator_table(frame, fields, findings, seconds)
    findings += enumerator_findings(table, config)
    median = median_duration(seconds) if seconds is not None else None
    by_rule = dict(Counter(f.rule for f in findings))
    return QualityScan(frame.height, findings, table, median, by_rule, Baseline(median, spread))
