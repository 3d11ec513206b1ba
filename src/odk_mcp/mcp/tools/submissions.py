"""Row-level tools: query submissions, read one, list validation findings (`submissions` scope;
sensitive fields redacted unless the caller also holds `pii`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from odk_mcp.kernel.clock import iso
from odk_mcp.mcp.calls import Target
from odk_mcp.mcp.deps import McpDeps
from odk_mcp.mcp.media import MediaLinks
from odk_mcp.mcp.models import (
    UNTRUSTED,
    Attachment,
    Comment,
    Finding,
    FindingList,
    SubmissionDetail,
    SubmissionPage,
    SubmissionRow,
)
from odk_mcp.mcp.redaction import flatten, minimise
from odk_mcp.mcp.tools.catalogue import READ_ONLY, FormId, ProjectId
from odk_mcp.mcp.tools.querying import Filter, conditions, decode_cursor, encode_cursor, query_hash
from odk_mcp.services.submissions import Keyset, SubmissionView
from odk_mcp.services.users import ScopedActor

MAX_LIMIT = 100
InstanceId = Annotated[str, Field(min_length=1, max_length=500, description="The submission's instanceId.")]


def row_out(
    view: SubmissionView,
    data: dict[str, Any],
    sensitive: frozenset[str],
    pii: bool,
    selected: frozenset[str] | None,
) -> SubmissionRow:
    values, redacted = minimise(flatten(data), sensitive, pii, selected)
    return SubmissionRow(
        instanceId=view.instance_id,
        submittedAt=iso(view.created_at),
        updatedAt=iso(view.updated_at),
        submitterId=view.submitter_id,
        reviewState=view.review_state,
        formVersion=view.form_version,
        values=values,
        redacted=redacted,
    )


def register(server: MCPServer[Any], deps: McpDeps, media: MediaLinks) -> None:
    guard = deps.guard

    @server.tool(
        title="Query submissions",
        description="Find a form's submissions, newest first. Filters (all must match) compare submission"
        " metadata (submittedAt, submitterId, reviewState, instanceId) or answers by field path"
        " (fields outside"
        " repeats). `fields` selects which answers to return (all by default). At most `limit` (≤"
        " 100) rows per"
        " call: `total` counts every match, `truncated` says more follow, `cursor` fetches the next page."
        " Sensitive fields are withheld (listed in `redacted`) unless the caller holds the `pii` scope."
        " " + UNTRUSTED,
        annotations=READ_ONLY,
    )
    async def query_submissions(
        projectId: ProjectId,
        xmlFormId: FormId,
        ctx: Context,
        filters: Annotated[
            list[Filter], Field(max_length=20, description="Conditions, all of which must hold.")
        ] = [],  # noqa: B006
        fields: Annotated[
            list[str] | None, Field(max_length=200, description="Field paths to return; all when omitted.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Rows per page (1-100).")] = 20,
        cursor: Annotated[
            str | None, Field(max_length=500, description="From a previous page's `cursor`.")
        ] = None,
    ) -> SubmissionPage:
        async def work(caller: ScopedActor) -> SubmissionPage:
            pii = "pii" in caller.scopes
            await ctx.report_progress(0, 3, "checking the form")
            view = await deps.forms.sensitivity.get(caller.actor, projectId, xmlFormId)
            known = {f.path for f in view.schema.fields}
            unknown = sorted(set(fields or ()) - known)
            if unknown:
                raise ValueError(f"Unknown field paths: {', '.join(unknown[:10])} (see get_form_schema).")
            qhash = query_hash(projectId, xmlFormId, filters)
            after = decode_cursor(cursor, qhash) if cursor else None
            await ctx.report_progress(1, 3, "querying")
            page = await deps.submissions.queries.query(
                caller.actor,
                projectId,
                xmlFormId,
                conditions(filters, view, pii),
                limit,
                after,
                timeout_ms=int(guard.timeout_seconds * 1000),
            )
            await ctx.report_progress(2, 3, "preparing rows")
            selected = frozenset(fields) if fields else None
            rows: list[SubmissionRow] = []
            size = 0
            next_key = page.next_key
            for r in page.rows:
                row = row_out(r.submission, r.data, view.sensitive_paths, pii, selected)
                size += len(row.model_dump_json())
                if rows and size > deps.max_result_bytes:
                    last = rows[-1]
                    prev = page.rows[len(rows) - 1].submission
                    assert last.instanceId == prev.instance_id
                    next_key = Keyset(prev.created_at, prev.id)
                    break
                rows.append(row)
            await ctx.report_progress(3, 3, "done")
            return SubmissionPage(
                rows=rows,
                total=page.total,
                returned=len(rows),
                truncated=next_key is not None,
                cursor=encode_cursor(next_key, qhash) if next_key else None,
            )

        return await guard.call(ctx, "query_submissions", "submissions", Target(projectId, xmlFormId), work)

    @server.tool(
        title="Get a submission",
        description="One submission: metadata, answers (sensitive ones withheld without `pii`), flags,"
        " validation findings, attachments (short-lived download links, never content inline) and review"
        " comments. " + UNTRUSTED,
        annotations=READ_ONLY,
    )
    async def get_submission(
        projectId: ProjectId, xmlFormId: FormId, instanceId: InstanceId, ctx: Context
    ) -> SubmissionDetail:
        async def work(caller: ScopedActor) -> SubmissionDetail:
            pii = "pii" in caller.scopes
            actor = caller.actor
            records = deps.submissions.records
            view = await deps.forms.sensitivity.get(actor, projectId, xmlFormId)
            submission = await records.get(actor, projectId, xmlFormId, instanceId, False)
            current = await records.data(actor, projectId, xmlFormId, instanceId, False)
            files = await records.attachments(actor, projectId, xmlFormId, instanceId, False)
            notes = await records.list_comments(actor, projectId, xmlFormId, instanceId, False)
            sensitive = view.sensitive_paths
            # Each file is withheld when the media field that names it is sensitive (any media field
            # when the name is not found, e.g. inside a repeat).
            flat = flatten(current["data"])
            media_paths = [f.path for f in view.schema.fields if f.binary]
            field_of = {flat.get(p): p for p in media_paths if isinstance(flat.get(p), str)}
            attachments = []
            for a in files:
                path = field_of.get(a["name"])
                withheld = not pii and (path in sensitive if path else bool(sensitive & set(media_paths)))
                url = None
                if a["exists"] and not withheld:
                    url = media.link(actor, projectId, xmlFormId, instanceId, a["name"])
                attachments.append(Attachment(name=a["name"], exists=a["exists"], url=url))
            return SubmissionDetail(
                submission=row_out(submission, current["data"], sensitive, pii, None),
                instanceName=submission.instance_name if pii or not sensitive else None,
                flags=current["flags"],
                findings=current["findings"],
                attachments=attachments,
                comments=[Comment(**c) for c in notes],
            )

        target = Target(projectId, xmlFormId, instanceId)
        return await guard.call(ctx, "get_submission", "submissions", target, work)

    @server.tool(
        title="Validation findings",
        description="Required/constraint rule findings recorded when submissions arrived (current versions of"
        " live submissions, newest first): which field, which rule, the outcome. Use it to review"
        " data quality."
        " " + UNTRUSTED,
        annotations=READ_ONLY,
    )
    async def validation_findings(
        projectId: ProjectId,
        xmlFormId: FormId,
        ctx: Context,
        outcome: Annotated[
            Literal["violated", "not-evaluated"] | None,
            Field(description="Only findings with this outcome; all when omitted."),
        ] = "violated",
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 50,
    ) -> FindingList:
        async def work(caller: ScopedActor) -> FindingList:
            found = await deps.submissions.records.form_findings(
                caller.actor, projectId, xmlFormId, False, outcome=outcome, limit=limit + 1
            )
            findings = [
                Finding(
                    instanceId=f["instanceId"],
                    path=f.get("path"),
                    rule=f.get("rule"),
                    outcome=f.get("outcome"),
                    detail={k: v for k, v in f.items() if k not in ("instanceId", "path", "rule", "outcome")},
                )
                for f in found[:limit]
            ]
            return FindingList(findings=findings, truncated=len(found) > limit)

        return await guard.call(ctx, "validation_findings", "submissions", Target(projectId, xmlFormId), work)
