"""Operational endpoints: liveness, readiness (database reachable), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from odk_mcp.kernel import problems

router = APIRouter(tags=["operations"])


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    if await request.app.state.container.db.ping():
        return JSONResponse({"status": "ready"})
    kind = problems.UNAVAILABLE
    return JSONResponse({"message": kind.message, "code": kind.code}, status_code=kind.status)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    await request.app.state.delivery_metrics.refresh(request.app.state.container.deliveries)
    await request.app.state.webhook_metrics.refresh(request.app.state.container.db)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
