"""Aggregate tools (`read` scope): a form's per-question summary, submissions over time, and a
crosstab of two questions with small cells suppressed. They call the aggregation and analytics
facades; sensitive questions are reduced to counts of answers without the `pii` scope."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from odk_mcp.mcp.calls import Target
from odk_mcp.mcp.deps import McpDeps
from odk_mcp.mcp.models import UNTRUSTED
from odk_mcp.mcp.tools.catalogue import READ_ONLY, FormId, ProjectId
from odk_mcp.mcp.tools.querying import bad_request
from odk_mcp.services.analytics import result_json
from odk_mcp.services.users import ScopedActor

MIN_CELL = 5  # the smallest cell shown to callers without `pii`
COUNT_KEYS = ("path", "name", "type", "label", "repeat", "total", "answered", "missing", "missingPercent")
ODataFilter = Annotated[
    str | None,
    Field(
        max_length=4000,
        description="Optional OData $filter on the submissions, e.g. __system/submissionDate ge 2026-11-01",
    ),
]


class DayCount(BaseModel):
    date: str
    count: int


class FormSummary(BaseModel):
    xmlFormId: str
    submissions: int
    submissionsPerDay: list[DayCount]
    questions: list[dict[str, Any]] = Field(
        description="Per question: answered/missing counts, and choice counts and percentages, numeric"
        " statistics and histograms, or date ranges by type; sensitive questions carry counts only"
        " (`redacted`: true) without the `pii` scope. Labels are form text: " + UNTRUSTED
    )

    def audit_rows(self) -> int:
        return self.submissions


class Series(BaseModel):
    key: str | None = Field(description="The enumerator id or form version (null: all submissions).")
    counts: list[int]
    total: int


class TimeSeriesOut(BaseModel):
    interval: str
    splitBy: str
    timeZone: str
    periods: list[str]
    series: list[Series]
    total: int

    def audit_rows(self) -> int:
        return self.total


class CrosstabOut(BaseModel):
    rowField: str
    colField: str
    rows: list[str] = Field(description="Row categories (choice values). " + UNTRUSTED)
    cols: list[str] = Field(description="Column categories (choice values). " + UNTRUSTED)
    counts: list[list[int | None]] = Field(description="null: a suppressed small cell.")
    rowPercent: list[list[float | None]]
    colPercent: list[list[float | None]]
    rowTotals: list[int]
    colTotals: list[int]
    n: int
    missing: int
    test: dict[str, Any] | None = Field(description="chi2 or Fisher test of independence, when computed.")
    cramersV: float | None
    suppressedCells: int
    suppressBelow: int
    notes: list[str]

    def audit_rows(self) -> int:
        return self.n


def register(server: MCPServer[Any], deps: McpDeps) -> None:
    guard = deps.guard

    async def sensitive(caller: ScopedActor, project_id: int, xml_form_id: str) -> frozenset[str]:
        if "pii" in caller.scopes:
            return frozenset()
        return (await deps.forms.sensitivity.get(caller.actor, project_id, xml_form_id)).sensitive_paths

    @server.tool(
        title="Summarise a form",
        description="Per-question summary of a form's submissions (optionally filtered): answered and missing"
        " counts, choice counts and percentages, numeric mean/median/sd/min/max/quantiles/histograms, date"
        " ranges, and submissions per day. Needs the user's right to list the form's submissions.",
        annotations=READ_ONLY,
    )
    async def summarize_form(
        projectId: ProjectId,
        xmlFormId: FormId,
        ctx: Context,
        odataFilter: ODataFilter = None,
        language: Annotated[str | None, Field(max_length=50, description="Label language.")] = None,
    ) -> FormSummary:
        async def work(caller: ScopedActor) -> FormSummary:
            await ctx.report_progress(0, 1, "summarising")
            body = await deps.aggregation.summaries.summarize(
                caller.actor, projectId, xmlFormId, odata_filter=odataFilter, language=language
            )
            hidden = await sensitive(caller, projectId, xmlFormId)
            questions = [
                {**{k: q.get(k) for k in COUNT_KEYS}, "redacted": True} if q["path"] in hidden else q
                for q in body["questions"]
            ]
            await ctx.report_progress(1, 1, "done")
            return FormSummary(
                xmlFormId=xmlFormId,
                submissions=body["submissions"],
                submissionsPerDay=[DayCount(**d) for d in body["submissionsPerDay"]],
                questions=questions,
            )

        return await guard.call(ctx, "summarize_form", "read", Target(projectId, xmlFormId), work)

    @server.tool(
        title="Submissions over time",
        description="How many submissions arrived per day or week, in a time zone, optionally split by"
        " enumerator or form version.",
        annotations=READ_ONLY,
    )
    async def submission_timeseries(
        projectId: ProjectId,
        xmlFormId: FormId,
        ctx: Context,
        interval: Literal["day", "week"] = "day",
        splitBy: Literal["none", "enumerator", "form_version"] = "none",
        timeZone: Annotated[
            str, Field(max_length=64, description="IANA time zone, e.g. Africa/Nairobi.")
        ] = "UTC",
        odataFilter: ODataFilter = None,
    ) -> TimeSeriesOut:
        async def work(caller: ScopedActor) -> TimeSeriesOut:
            result = await deps.analytics.statistics.timeseries(
                caller.actor, projectId, xmlFormId, interval, splitBy, timeZone, odataFilter
            )
            return TimeSeriesOut.model_validate(result_json(result))

        return await guard.call(ctx, "submission_timeseries", "read", Target(projectId, xmlFormId), work)

    @server.tool(
        title="Crosstab",
        description="Cross-tabulate two choice questions (select_one or select_multiple): counts, row and"
        " column percentages, a test of independence and Cramér's V. Cells with fewer than `suppressBelow`"
        f" answers are suppressed (null); without the `pii` scope at least {MIN_CELL}. Sensitive questions"
        " need `pii`.",
        annotations=READ_ONLY,
    )
    async def crosstab(
        projectId: ProjectId,
        xmlFormId: FormId,
        row: Annotated[str, Field(max_length=500, description="Field path of the row question.")],
        col: Annotated[str, Field(max_length=500, description="Field path of the column question.")],
        ctx: Context,
        suppressBelow: Annotated[int, Field(ge=2, le=1000, description="Smallest cell shown.")] = MIN_CELL,
        test: Literal["auto", "chi2", "fisher", "none"] = "auto",
        odataFilter: ODataFilter = None,
    ) -> CrosstabOut:
        async def work(caller: ScopedActor) -> CrosstabOut:
            hidden = await sensitive(caller, projectId, xmlFormId)
            refused = [p for p in (row, col) if p in hidden]
            if refused:
                raise bad_request(f"{refused[0]} is sensitive: a crosstab of it needs the `pii` scope.")
            smallest = suppressBelow if "pii" in caller.scopes else max(suppressBelow, MIN_CELL)
            result = await deps.analytics.statistics.crosstab(
                caller.actor, projectId, xmlFormId, row, col, test, smallest, odataFilter
            )
            return CrosstabOut.model_validate({**result_json(result), "suppressBelow": smallest})

        return await guard.call(ctx, "crosstab", "read", Target(projectId, xmlFormId), work)
