"""Export tools: start an export job of a form's submissions and follow it (`submissions` and
`pii` scopes: an export holds every field, sensitive ones included).

The job is the aggregation service's: its handle is random, expires, and only its creator can
read it. The finished file is handed out as a short-lived sealed link, like media, because
assistants' API tokens are not accepted by the REST download route.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from odk_mcp.mcp.calls import ScopeMissing, Target
from odk_mcp.mcp.deps import McpDeps
from odk_mcp.mcp.media import MediaLinks
from odk_mcp.mcp.tools.catalogue import READ_ONLY, FormId, ProjectId
from odk_mcp.services.users import ScopedActor

Format = Literal["csv.zip", "csv", "xlsx", "geojson", "sav", "parquet"]


class ExportJob(BaseModel):
    handle: str = Field(description="Pass it to get_export. Secret to the caller; it expires with the job.")
    status: str = Field(description="queued, running, done, failed or expired")
    format: str
    projectId: int
    xmlFormId: str
    rows: int | None = Field(description="Rows written so far.")
    total: int | None = Field(description="Rows the export will hold.")
    fileName: str | None
    size: int | None
    error: dict[str, Any] | None
    expiresAt: str | None
    downloadUrl: str | None = Field(description="A short-lived link to the file once it is done.")

    def audit_rows(self) -> int:
        return self.total or 0


def job_out(handle: str, body: dict[str, Any], url: str | None) -> ExportJob:
    return ExportJob(
        handle=handle,
        status=body["status"],
        format=body["format"],
        projectId=body["projectId"],
        xmlFormId=body["xmlFormId"],
        rows=body["progress"]["rows"],
        total=body["progress"]["total"],
        fileName=body["fileName"],
        size=body["size"],
        error=body["error"],
        expiresAt=body["expiresAt"],
        downloadUrl=url,
    )


def register(server: MCPServer[Any], deps: McpDeps, links: MediaLinks) -> None:
    guard = deps.guard
    jobs = deps.exports.jobs

    async def needs_pii(caller: ScopedActor) -> None:
        if "pii" not in caller.scopes:
            raise ScopeMissing("pii")

    @server.tool(
        title="Start an export",
        description="Start a background export of a form's submissions as a file (csv.zip with media, csv,"
        " xlsx, geojson, sav, parquet), optionally filtered with an OData $filter. Returns a handle for"
        " get_export. Exports hold every field, sensitive ones included: needs the `submissions` and `pii`"
        " scopes and the user's right to list the form's submissions.",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def start_export(
        projectId: ProjectId,
        xmlFormId: FormId,
        ctx: Context,
        format: Annotated[Format, Field(description="The file format.")] = "csv",
        odataFilter: Annotated[
            str | None,
            Field(
                max_length=4000, description="An OData $filter, e.g. __system/submissionDate ge 2026-11-01"
            ),
        ] = None,
    ) -> ExportJob:
        async def work(caller: ScopedActor) -> ExportJob:
            await needs_pii(caller)
            options: dict[str, Any] = {"$filter": odataFilter} if odataFilter else {}
            handle, job = await jobs.create(
                caller.actor, projectId, xmlFormId, False, {"format": format, "options": options}
            )
            return job_out(handle, job.to_json(), None)

        return await guard.call(ctx, "start_export", "submissions", Target(projectId, xmlFormId), work)

    @server.tool(
        title="Get an export",
        description="The state of an export started with start_export (progress in rows); once done, a"
        " short-lived download link. Only the caller who started it can see it.",
        annotations=READ_ONLY,
    )
    async def get_export(
        handle: Annotated[str, Field(min_length=10, max_length=200, description="From start_export.")],
        ctx: Context,
    ) -> ExportJob:
        async def work(caller: ScopedActor) -> ExportJob:
            await needs_pii(caller)
            body = (await jobs.get(caller.actor, handle)).to_json()
            url = links.export_link(caller.actor, handle) if body["status"] == "done" else None
            return job_out(handle, body, url)

        return await guard.call(ctx, "get_export", "submissions", Target(), work)
