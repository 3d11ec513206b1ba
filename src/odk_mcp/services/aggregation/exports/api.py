"""HTTP exports: `GET|POST /v1/projects/{p}/forms/{f}/submissions.{csv.zip,csv,xlsx,geojson,sav,parquet}`
and the same under `…/draft/`, plus export jobs (`POST …/forms/{f}/exports`, `GET
/v1/exports/{handle}`, `GET /v1/exports/{handle}/file`).

Options come from the query string (GET) or the query string and a JSON or form body (POST,
the body winning), as in ODK Central. CSV, the zip and GeoJSON stream as they are produced;
XLSX, Parquet and SPSS are written to a spool file in the data directory first (their
libraries need a file), which is unlinked as soon as it is open for sending.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, RowId, read_body
from odk_mcp.services.aggregation.exports.domain.options import ExportFormat, parse_options
from odk_mcp.services.aggregation.exports.downloads import CHUNK, content_disposition
from odk_mcp.services.aggregation.exports.jobs_api import add_job_routes

if TYPE_CHECKING:
    from odk_mcp.services.aggregation.exports.service import ExportsService

FORM = "/v1/projects/{project_id}/forms/{xml_form_id}"
MAX_OPTIONS_BODY = 65_536


def get_exports(request: Request) -> ExportsService:
    return cast("ExportsService", request.app.state.exports)


ExportsDep = Annotated["ExportsService", Depends(get_exports)]


async def request_options(request: Request) -> dict[str, Any]:
    """Query-string options, overlaid with a POST body's (JSON object or form fields)."""
    raw: dict[str, Any] = dict(request.query_params)
    if request.method != "POST":
        return raw
    body = await read_body(request, MAX_OPTIONS_BODY)
    if not body.strip():
        return raw
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            parsed = json.loads(body)
        except ValueError:
            raise Problem(problems.UNPARSEABLE, details={"format": "json"}) from None
        if not isinstance(parsed, dict):
            raise Problem(problems.UNPARSEABLE, "The request body must be a JSON object.", {"format": "json"})
        raw.update(parsed)
    elif kind in ("application/x-www-form-urlencoded", ""):
        try:
            raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise Problem(problems.UNPARSEABLE, details={"format": "request"}) from None
    else:
        raise Problem(
            problems.UNSUPPORTED_MEDIA_TYPE,
            "Send export options as JSON or form fields.",
            {"contentType": kind, "allowed": ["application/json", "application/x-www-form-urlencoded"]},
        )
    return raw


def _send_file(path: Path) -> tuple[Iterator[bytes], int]:
    """Open, unlink and stream a spool file: its space is freed when the sending ends."""
    handle = path.open("rb")
    size = os.fstat(handle.fileno()).st_size
    path.unlink(missing_ok=True)

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    return chunks(), size


def _export_route(fmt: ExportFormat, draft: bool) -> Any:
    async def export(
        project_id: RowId, xml_form_id: str, request: Request, actor: CurrentActor, service: ExportsDep
    ) -> Response:
        options = parse_options(await request_options(request))
        prepared = await service.exports.prepare(actor, project_id, xml_form_id, draft, fmt, options)
        await service.audit_export(actor, prepared)
        headers = {"Content-Disposition": content_disposition(prepared.file_name)}
        if prepared.streamed:
            return StreamingResponse(
                service.exports.stream(prepared), media_type=fmt.media_type, headers=headers
            )
        path = await service.spool_path(prepared.file_name)
        try:
            await service.exports.write(prepared, path)
            chunks, size = _send_file(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        headers["Content-Length"] = str(size)
        return StreamingResponse(chunks, media_type=fmt.media_type, headers=headers)

    export.__name__ = f"export_{fmt.name.lower()}{'_draft' if draft else ''}"
    return export


def router() -> APIRouter:
    api = APIRouter(tags=["exports"])
    for draft, prefix in ((False, FORM), (True, FORM + "/draft")):
        for fmt in ExportFormat:
            api.add_api_route(
                f"{prefix}/submissions.{fmt.value}",
                _export_route(fmt, draft),
                methods=["GET", "POST"],
                response_class=Response,
                summary=f"Export submissions as {fmt.value}" + (" (draft)" if draft else ""),
            )
    add_job_routes(api)
    return api
