"""OData routes: `/v1/projects/{p}/forms/{f}.svc` (service document), `….svc/$metadata`
(EDMX), `….svc/{table or entity path}` (data documents), and the same under `…/draft.svc`
for a form's draft. Registered before the forms routes, whose `{xmlFormId}` would otherwise
match `household.svc`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from odk_mcp.kernel.web import CurrentActor, RowId
from odk_mcp.services.aggregation.api.deps import Aggregation
from odk_mcp.services.aggregation.odata.options import parse_options

router = APIRouter(tags=["odata"])

JSON_TYPE = "application/json; charset=utf-8; odata.metadata=minimal"
HEADERS = {"OData-Version": "4.0"}
FORM = "/v1/projects/{project_id}/forms/{xml_form_id}"


def _service_url(request: Request, project_id: int, xml_form_id: str, draft: bool) -> str:
    base = str(request.base_url).rstrip("/")
    suffix = "/draft.svc" if draft else ".svc"
    return f"{base}/v1/projects/{project_id}/forms/{quote(xml_form_id, safe='')}{suffix}"


def _routes(suffix: str, draft: bool) -> None:
    async def service_document(
        project_id: RowId, xml_form_id: str, request: Request, actor: CurrentActor, service: Aggregation
    ) -> Response:
        document = await service.odata.service_document(
            actor, project_id, xml_form_id, draft, _service_url(request, project_id, xml_form_id, draft)
        )
        return JSONResponse(document, media_type=JSON_TYPE, headers=HEADERS)

    async def resource(
        project_id: RowId,
        xml_form_id: str,
        resource: str,
        request: Request,
        actor: CurrentActor,
        service: Aggregation,
    ) -> Response:
        if resource.strip("/") == "":
            return await service_document(project_id, xml_form_id, request, actor, service)
        if resource == "$metadata":
            body = await service.odata.metadata(actor, project_id, xml_form_id, draft)
            return Response(body, media_type="application/xml", headers=HEADERS)
        keys = [key for key, _ in request.query_params.multi_items()]
        query: dict[str, Any] = dict(request.query_params)
        options = parse_options(query, keys)
        feed = await service.odata.open(
            actor,
            project_id,
            xml_form_id,
            draft,
            resource,
            options,
            _service_url(request, project_id, xml_form_id, draft),
            query,
        )
        return StreamingResponse(feed.chunks(), media_type=JSON_TYPE, headers=HEADERS)

    router.add_api_route(FORM + suffix, service_document, methods=["GET"], summary="OData service document")
    router.add_api_route(
        FORM + suffix + "/{resource:path}",
        resource,
        methods=["GET"],
        summary="OData metadata or data document",
    )


_routes(".svc", draft=False)
_routes("/draft.svc", draft=True)
