"""OData of an entity list: `/v1/projects/{p}/datasets/{name}.svc`, `$metadata`, `Entities`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from odk_mcp.kernel.web import CurrentActor, RowId
from odk_mcp.services.entities import FeedRequest
from odk_mcp.services.entities.api.deps import EntitiesApi
from odk_mcp.services.entities.odata.feed import service_root

router = APIRouter(tags=["odata"])

SVC = "/v1/projects/{project_id}/datasets/{name}.svc"
ODATA_HEADERS = {"OData-Version": "4.0"}


@router.get(SVC)
async def service_document(project_id: RowId, name: str, actor: CurrentActor, service: EntitiesApi) -> Any:
    document = await service.feed.service_document(actor, project_id, name)
    return JSONResponse(document, headers=ODATA_HEADERS)


@router.get(SVC + "/$metadata")
async def metadata(project_id: RowId, name: str, actor: CurrentActor, service: EntitiesApi) -> Response:
    xml = await service.feed.metadata(actor, project_id, name)
    return Response(xml, media_type="application/xml", headers=ODATA_HEADERS)


@router.get(SVC + "/Entities")
async def entities(
    project_id: RowId, name: str, request: Request, actor: CurrentActor, service: EntitiesApi
) -> StreamingResponse:
    params = dict(request.query_params)
    feed = FeedRequest(params, service_root(service.feed.public_url, project_id, name))
    body = await service.feed.entities(actor, project_id, name, feed)
    return StreamingResponse(body, media_type="application/json", headers=ODATA_HEADERS)
