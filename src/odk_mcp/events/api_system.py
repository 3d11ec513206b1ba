"""`/v1/system/events…`: the event pipeline's backlog and dead letters, for administrators."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from odk_mcp.events.deliveries import Deliveries
from odk_mcp.kernel.web import CurrentActor, RequestBody

router = APIRouter(tags=["events"])


def _deliveries(request: Request) -> Deliveries:
    return cast(Deliveries, request.app.state.deliveries)


DeliveriesDep = Annotated[Deliveries, Depends(_deliveries)]


class RedriveBody(RequestBody):
    consumer: str | None = Field(default=None, min_length=1, max_length=200)


@router.get("/v1/system/events")
async def event_backlog(actor: CurrentActor, deliveries: DeliveriesDep) -> dict[str, Any]:
    return {"consumers": [entry.to_json() for entry in await deliveries.summary(actor)]}


@router.get("/v1/system/events/dead")
async def dead_deliveries(
    actor: CurrentActor,
    deliveries: DeliveriesDep,
    consumer: str | None = Query(default=None, min_length=1, max_length=200),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=2**63 - 1),  # PostgreSQL OFFSET is a bigint
) -> list[dict[str, Any]]:
    dead = await deliveries.dead(actor, consumer=consumer, limit=limit, offset=offset)
    return [entry.to_json() for entry in dead]


@router.post("/v1/system/events/dead/redrive")
async def redrive_dead_deliveries(
    actor: CurrentActor, deliveries: DeliveriesDep, body: RedriveBody | None = None
) -> dict[str, int]:
    consumer = body.consumer if body is not None else None
    return {"redriven": await deliveries.redrive(actor, consumer=consumer, dead_only=True)}
