"""Review tools (`review` scope): set a submission's review state, comment on it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from odk_mcp.kernel.clock import iso
from odk_mcp.mcp.calls import Target
from odk_mcp.mcp.deps import McpDeps
from odk_mcp.mcp.models import Comment, CommentResult, ReviewResult
from odk_mcp.mcp.tools.catalogue import FormId, ProjectId
from odk_mcp.mcp.tools.submissions import InstanceId
from odk_mcp.services.users import ScopedActor

REVIEW = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
COMMENT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)


def register(server: MCPServer[Any], deps: McpDeps) -> None:
    guard = deps.guard

    @server.tool(
        title="Set review state",
        description="Set a submission's review state (hasIssues, edited, approved, rejected), as a reviewer"
        " would in ODK Central. Needs the `review` scope and the user's right to update submissions."
        " Recorded in the audit log.",
        annotations=REVIEW,
    )
    async def set_review_state(
        projectId: ProjectId,
        xmlFormId: FormId,
        instanceId: InstanceId,
        reviewState: Literal["hasIssues", "edited", "approved", "rejected"],
        ctx: Context,
    ) -> ReviewResult:
        async def work(caller: ScopedActor) -> ReviewResult:
            view = await deps.submissions.records.set_review_state(
                caller.actor, projectId, xmlFormId, instanceId, False, reviewState
            )
            return ReviewResult(
                instanceId=view.instance_id, reviewState=view.review_state, updatedAt=iso(view.updated_at)
            )

        target = Target(projectId, xmlFormId, instanceId)
        return await guard.call(ctx, "set_review_state", "review", target, work)

    @server.tool(
        title="Add a comment",
        description="Add a review comment to a submission (visible to the project's reviewers in ODK"
        " Central). Needs the `review` scope. Write it for people: it is stored as given.",
        annotations=COMMENT,
    )
    async def add_comment(
        projectId: ProjectId,
        xmlFormId: FormId,
        instanceId: InstanceId,
        body: Annotated[str, Field(min_length=1, max_length=10_000, description="The comment text.")],
        ctx: Context,
    ) -> CommentResult:
        async def work(caller: ScopedActor) -> CommentResult:
            comment = await deps.submissions.records.add_comment(
                caller.actor, projectId, xmlFormId, instanceId, False, body
            )
            return CommentResult(instanceId=instanceId, comment=Comment(**comment))

        return await guard.call(ctx, "add_comment", "review", Target(projectId, xmlFormId, instanceId), work)
