"""What the tools, resources and prompts share: the services, the call guard, the limits."""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.mcp.calls import CallGuard
from odk_mcp.services.aggregation import AggregationService
from odk_mcp.services.aggregation.exports import ExportsService
from odk_mcp.services.analytics import AnalyticsService
from odk_mcp.services.forms import FormsService
from odk_mcp.services.submissions import SubmissionsService
from odk_mcp.services.users import UsersService


@dataclass(frozen=True)
class McpDeps:
    users: UsersService
    forms: FormsService
    submissions: SubmissionsService
    aggregation: AggregationService
    analytics: AnalyticsService
    exports: ExportsService
    guard: CallGuard
    max_result_bytes: int
    public_url: str
