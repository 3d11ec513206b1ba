"""Form-authoring tools (`forms.write` scope): a draft from XLSForm text, and publishing it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from odk_mcp.mcp.calls import Target
from odk_mcp.mcp.deps import McpDeps
from odk_mcp.mcp.models import DraftResult, PublishResult
from odk_mcp.mcp.tools.catalogue import ProjectId
from odk_mcp.services.forms import ConversionView, FormView, UploadOptions
from odk_mcp.services.users import ScopedActor

CONTENT_TYPES = {"markdown": "text/markdown", "csv": "text/csv"}
MAX_XLSFORM_CHARS = 1_000_000


def draft_result(project_id: int, outcome: FormView | ConversionView) -> DraftResult:
    if isinstance(outcome, ConversionView):
        body = outcome.to_json()
        status = {"running": "converting", "failed": "failed"}.get(body.get("status", ""), "draft")
        return DraftResult(
            status=status,
            projectId=project_id,
            xmlFormId=body.get("xmlFormId"),
            version=None,
            conversionId=str(body.get("id")),
            problem=body.get("problem"),
        )
    return DraftResult(
        status="draft", projectId=project_id, xmlFormId=outcome.xml_form_id, version=outcome.version
    )


def register(server: MCPServer[Any], deps: McpDeps) -> None:
    guard = deps.guard

    @server.tool(
        title="Create a form draft",
        description="Create a draft form from XLSForm text (the survey/choices/settings sheets as a markdown"
        " table, as in pyxform's tests, or as CSV). The form id comes from the settings sheet; when"
        " a form with"
        " that id exists, its draft is replaced. Nothing is published: review the draft, then call"
        " publish_draft. Needs the `forms.write` scope and the user's right to create or update forms.",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def create_form_draft(
        projectId: ProjectId,
        xlsform: Annotated[
            str, Field(min_length=1, max_length=MAX_XLSFORM_CHARS, description="The XLSForm text.")
        ],
        ctx: Context,
        format: Annotated[
            Literal["markdown", "csv"], Field(description="How the XLSForm text is written.")
        ] = ("markdown"),
        xmlFormId: Annotated[
            str | None,
            Field(max_length=200, description="An existing form to give a new draft; omit for a new form."),
        ] = None,
    ) -> DraftResult:
        async def work(caller: ScopedActor) -> DraftResult:
            await ctx.report_progress(0, 1, "converting the XLSForm")
            options = UploadOptions(publish=False, target_form=xmlFormId)
            outcome = await deps.forms.uploads.upload(
                caller.actor, projectId, xlsform.encode(), CONTENT_TYPES[format], options
            )
            await ctx.report_progress(1, 1, "done")
            return draft_result(projectId, outcome)

        return await guard.call(ctx, "create_form_draft", "forms.write", Target(projectId, xmlFormId), work)

    @server.tool(
        title="Publish a draft",
        description="Publish a form's draft so that devices can download it and submissions are accepted for"
        " it. Optionally set its version string (it must not have been used before). Needs the `forms.write`"
        " scope.",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def publish_draft(
        projectId: ProjectId,
        xmlFormId: Annotated[str, Field(min_length=1, max_length=200)],
        ctx: Context,
        version: Annotated[str | None, Field(max_length=200, description="A new version string.")] = None,
    ) -> PublishResult:
        async def work(caller: ScopedActor) -> PublishResult:
            await deps.forms.drafts.publish(caller.actor, projectId, xmlFormId, version)
            form = (await deps.forms.catalog.get(caller.actor, projectId, xmlFormId)).to_json()
            return PublishResult(
                projectId=projectId,
                xmlFormId=xmlFormId,
                version=form["version"],
                publishedAt=form["publishedAt"],
            )

        return await guard.call(ctx, "publish_draft", "forms.write", Target(projectId, xmlFormId), work)
