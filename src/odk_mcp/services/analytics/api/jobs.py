"""Analysis job routes, and how the long analyses' own routes use them.

`POST …/analytics/jobs` (`{"kind": "quality" | "enumerators" | "report.html" | "report.pdf"}`)
starts a job and answers 202 with its handle; `GET /v1/analytics/jobs/{handle}` reports its
progress; `GET /v1/analytics/jobs/{handle}/result` returns the result once done (the JSON the
synchronous route answers, or the report file).

`POST …/analytics/quality`, `GET …/analytics/enumerators` and `GET …/analytics/report.html`
/ `.pdf` start the same job and wait for it up to `analytics_wait_seconds`: a small form's
answer comes back as before (200 with the result), a big one's as 202 with the handle and a
`Location` header. `Prefer: respond-async` (RFC 7240) asks for the handle at once, and
`Prefer: wait=N` for at most N seconds of waiting.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.web import CurrentActor
from odk_mcp.services.analytics.analyses import AnalysisKind
from odk_mcp.services.analytics.api.deps import Analytics
from odk_mcp.services.analytics.jobs import JobView, links

jobs_router = APIRouter(tags=["analytics"])

Handle = Annotated[str, PathParam(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]
PreferHeader = Annotated[str | None, Header(max_length=1000)]
FILE_NAMES = {AnalysisKind.REPORT_HTML: "report.html", AnalysisKind.REPORT_PDF: "report.pdf"}


def wait_preferred(prefer: str | None, longest: float) -> float:
    """How long to wait for the job: `longest`, 0 with `respond-async`, or less if the client
    prefers (`wait=N`, RFC 7240); unparseable preferences are ignored, as the RFC says."""
    wait = longest
    for preference in (prefer or "").split(","):
        item = preference.split(";")[0].strip().lower()
        if item == "respond-async":
            return 0.0
        name, _, value = item.partition("=")
        if name.strip() == "wait" and value.strip().isdigit():
            wait = min(wait, float(value.strip()))
    return wait


def accepted(handle: str, job: JobView) -> JSONResponse:
    return JSONResponse(job.to_json(handle), status_code=202, headers={"Location": links(handle)["status"]})


async def result_response(service: Analytics, job: JobView) -> Response:
    """A done job's result as the synchronous route answers it (409.32 / 404.1 otherwise)."""
    job, content = await service.jobs.outcome(job)
    if content is None:
        return JSONResponse(job.row["result"])
    headers = {}
    if job.kind is AnalysisKind.REPORT_PDF:
        headers["Content-Disposition"] = f'attachment; filename="{job.row["xml_form_id"]}-report.pdf"'
    return Response(content, media_type=job.row["media_type"], headers=headers)


async def run_analysis(
    service: Analytics,
    actor: Actor,
    project_id: int,
    xml_form_id: str,
    kind: AnalysisKind,
    prefer: str | None,
) -> Response:
    """Start the analysis as a job and answer with its result if it finishes in time."""
    handle, job = await service.jobs.create(actor, project_id, xml_form_id, kind.value)
    job = await service.jobs.wait(job, wait_preferred(prefer, service.wait_seconds))
    if job.status == "failed":
        raise job.failure()
    if job.status != "done":
        return accepted(handle, job)
    return await result_response(service, job)


class JobBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=100)


@jobs_router.post("/v1/projects/{project_id}/forms/{xml_form_id}/analytics/jobs", status_code=202)
async def create_analysis_job(
    project_id: int, xml_form_id: str, body: JobBody, actor: CurrentActor, service: Analytics
) -> JSONResponse:
    handle, job = await service.jobs.create(actor, project_id, xml_form_id, body.kind)
    return accepted(handle, job)


@jobs_router.get("/v1/analytics/jobs/{handle}")
async def analysis_job(handle: Handle, actor: CurrentActor, service: Analytics) -> dict[str, Any]:
    return (await service.jobs.get(actor, handle)).to_json()


@jobs_router.get("/v1/analytics/jobs/{handle}/result", response_class=Response)
async def analysis_job_result(handle: Handle, actor: CurrentActor, service: Analytics) -> Response:
    return await result_response(service, await service.jobs.get(actor, handle))
