"""Export job routes: `POST /v1/projects/{p}/forms/{f}[/draft]/exports` starts one (202 with
its handle), `GET /v1/exports/{handle}` reports progress, `GET /v1/exports/{handle}/file`
downloads the file once the job is done."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response, StreamingResponse

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, RowId, read_body
from odk_mcp.services.aggregation.exports.domain.options import ExportFormat
from odk_mcp.services.aggregation.exports.downloads import content_disposition, file_chunks

if TYPE_CHECKING:
    from odk_mcp.services.aggregation.exports.service import ExportsService

FORM = "/v1/projects/{project_id}/forms/{xml_form_id}"
MAX_JOB_BODY = 65_536
Handle = Annotated[str, PathParam(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


def _service(request: Request) -> ExportsService:
    return cast("ExportsService", request.app.state.exports)


Service = Annotated["ExportsService", Depends(_service)]


async def _json_body(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JOB_BODY)
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise Problem(problems.UNPARSEABLE, details={"format": "json"}) from None
    if not isinstance(parsed, dict):
        raise Problem(problems.UNPARSEABLE, "The request body must be a JSON object.", {"format": "json"})
    return parsed


def add_job_routes(api: APIRouter) -> None:
    def create_route(draft: bool) -> Any:
        async def create_export_job(
            project_id: RowId, xml_form_id: str, request: Request, actor: CurrentActor, service: Service
        ) -> JSONResponse:
            body = await _json_body(request)
            handle, job = await service.jobs.create(actor, project_id, xml_form_id, draft, body)
            links = {"status": f"/v1/exports/{handle}", "file": f"/v1/exports/{handle}/file"}
            return JSONResponse({"handle": handle, **job.to_json(), "links": links}, status_code=202)

        create_export_job.__name__ = "create_export_job" + ("_draft" if draft else "")
        return create_export_job

    api.add_api_route(f"{FORM}/exports", create_route(False), methods=["POST"], status_code=202)
    api.add_api_route(f"{FORM}/draft/exports", create_route(True), methods=["POST"], status_code=202)

    @api.get("/v1/exports/{handle}")
    async def export_job(handle: Handle, actor: CurrentActor, service: Service) -> dict[str, Any]:
        return (await service.jobs.get(actor, handle)).to_json()

    @api.get("/v1/exports/{handle}/file", response_class=Response)
    async def export_job_file(handle: Handle, actor: CurrentActor, service: Service) -> Response:
        job, path = await service.jobs.file(actor, handle)
        fmt = ExportFormat(job.row["format"])
        headers = {
            "Content-Disposition": content_disposition(job.row["file_name"]),
            "Content-Length": str(job.row["file_size"]),
        }
        return StreamingResponse(file_chunks(path), media_type=fmt.media_type, headers=headers)
