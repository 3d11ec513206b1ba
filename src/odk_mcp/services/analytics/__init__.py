"""The analytics service: statistics, data-quality findings and insight reports (public surface).

The pure domain (`domain/`) computes over Polars frames of a form's rows; the service reads
those rows only through the aggregation read facade and the forms service's public surface.
"""

from __future__ import annotations

from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.quality.findings import Area, Finding, QualityConfig, Severity

__all__ = ["AnalysisError", "Area", "Finding", "QualityConfig", "Severity"]
