"""FastAPI dependencies of the aggregation routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

if TYPE_CHECKING:
    from odk_mcp.services.aggregation import AggregationService


def get_aggregation(request: Request) -> AggregationService:
    return cast("AggregationService", request.app.state.aggregation)


Aggregation = Annotated["AggregationService", Depends(get_aggregation)]
