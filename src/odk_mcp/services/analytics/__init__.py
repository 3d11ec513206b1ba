"""The analytics service: statistics, data-quality findings and insight reports (public surface).

The pure domain (`domain/`) computes over Polars frames of a form's rows; the service reads
those rows only through the aggregation read facade and the forms service's public surface.

- `statistics`: crosstab, compare, correlate, estimate (survey-weighted too), timeseries.
- `quality`: full scans (`rescan`, stored), findings per form/submission/enumerator,
  dismissals, project areas.
- `reports`: the insight report as HTML or PDF.
- `themes`: free-text answers clustered into themes (needs the optional `text` extra).
- `jobs`: the long analyses (full scan, enumerator table, reports) as background jobs with
  handles; `wait_seconds` is how long a request waits for one before answering with its handle.
- `consumers()`: the incremental quality consumer for `bootstrap`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from odk_mcp.events import Consumer
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation import AggregationService
from odk_mcp.services.analytics.analyses import Analyses, AnalysisKind
from odk_mcp.services.analytics.consumer import CONSUMER_NAME, QualityConsumer
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.quality.findings import Area, Finding, QualityConfig, Severity
from odk_mcp.services.analytics.jobs import AnalysisJobs, JobSettings, JobView
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.quality import Quality
from odk_mcp.services.analytics.reports import Reports
from odk_mcp.services.analytics.results import to_json as result_json
from odk_mcp.services.analytics.statistics import Statistics
from odk_mcp.services.analytics.themes import DEFAULT_MAX_ANSWERS, Themes
from odk_mcp.services.forms import FormsService


@dataclass(frozen=True)
class AnalyticsService:
    statistics: Statistics
    quality: Quality
    reports: Reports
    incremental: QualityConsumer
    jobs: AnalysisJobs
    wait_seconds: float
    themes: Themes

    def consumers(self) -> list[Consumer]:
        return [self.incremental.consumer()]

    def start(self) -> None:
        self.jobs.start()

    async def stop(self) -> None:
        await self.jobs.stop()


DEFAULT_JOBS = JobSettings(
    ttl=timedelta(hours=24),
    stale_after=timedelta(seconds=60),
    max_attempts=3,
    poll_seconds=2.0,
    concurrency=2,
)


def build_analytics_service(
    db: Database,
    authorizer: Authorizer,
    aggregation: AggregationService,
    forms: FormsService,
    job_settings: JobSettings = DEFAULT_JOBS,
    wait_seconds: float = 30.0,
    themes_max_answers: int = DEFAULT_MAX_ANSWERS,
) -> AnalyticsService:
    read_model = aggregation.read_model
    frames = FormFrames(read_model, aggregation.columns)
    quality = Quality(db, frames, forms, authorizer)
    reports = Reports(frames, quality)
    return AnalyticsService(
        statistics=Statistics(frames),
        quality=quality,
        reports=reports,
        incremental=QualityConsumer(read_model, aggregation.projector, quality),
        jobs=AnalysisJobs(db, frames, Analyses(quality, reports), job_settings),
        wait_seconds=wait_seconds,
        themes=Themes(frames, themes_max_answers),
    )


__all__ = [
    "CONSUMER_NAME",
    "AnalysisError",
    "AnalysisJobs",
    "AnalysisKind",
    "AnalyticsService",
    "Area",
    "Finding",
    "JobSettings",
    "JobView",
    "QualityConfig",
    "Severity",
    "build_analytics_service",
    "result_json",
]
