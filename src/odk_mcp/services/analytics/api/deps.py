"""FastAPI dependencies of the analytics routes: the service from the app's state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

if TYPE_CHECKING:
    from odk_mcp.services.analytics import AnalyticsService


def _service(request: Request) -> AnalyticsService:
    return cast("AnalyticsService", request.app.state.analytics)


Analytics = Annotated["AnalyticsService", Depends(_service)]
