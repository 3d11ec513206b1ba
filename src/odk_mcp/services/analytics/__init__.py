"""The analytics service: statistics, data-quality findings and insight reports (public surface).

The pure domain (`domain/`) computes over Polars frames of a form's rows; the service reads
those rows only through the aggregation read facade and the forms service's public surface.

- `statistics`: crosstab, compare, correlate, estimate (survey-weighted too), timeseries.
- `quality`: full scans (`rescan`, stored), findings per form/submission/enumerator,
  dismissals, project areas.
- `reports`: the insight report as HTML or PDF.
- `consumers()`: the incremental quality consumer for `bootstrap`.
"""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.events import Consumer
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation import AggregationService
from odk_mcp.services.analytics.api.render import to_json as result_json
from odk_mcp.services.analytics.consumer import CONSUMER_NAME, QualityConsumer
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.quality.findings import Area, Finding, QualityConfig, Severity
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.quality import Quality
from odk_mcp.services.analytics.reports import Reports
from odk_mcp.services.analytics.statistics import Statistics
from odk_mcp.services.forms import FormsService


@dataclass(frozen=True)
class AnalyticsService:
    statistics: Statistics
    quality: Quality
    reports: Reports
    incremental: QualityConsumer

    def consumers(self) -> list[Consumer]:
        return [self.incremental.consumer()]


def build_analytics_service(
    db: Database, authorizer: Authorizer, aggregation: AggregationService, forms: FormsService
) -> AnalyticsService:
    read_model = aggregation.read_model
    frames = FormFrames(read_model, aggregation.columns)
    quality = Quality(db, frames, forms, authorizer)
    return AnalyticsService(
        statistics=Statistics(frames),
        quality=quality,
        reports=Reports(frames, quality),
        incremental=QualityConsumer(read_model, aggregation.projector, quality),
    )


__all__ = [
    "CONSUMER_NAME",
    "AnalysisError",
    "AnalyticsService",
    "Area",
    "Finding",
    "QualityConfig",
    "Severity",
    "build_analytics_service",
    "result_json",
]
