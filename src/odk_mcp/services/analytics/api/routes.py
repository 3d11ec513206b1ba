"""`/v1/projects/{p}/forms/{f}/analytics/…` and `/v1/projects/{p}/analytics/area`.

Handlers only translate HTTP to facade calls: parameters in, JSON (or a report file) out.
Every statistic accepts `$filter` (the OData filter of exports and feeds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, success
from odk_mcp.services.analytics.analyses import AnalysisKind
from odk_mcp.services.analytics.api.deps import Analytics
from odk_mcp.services.analytics.api.jobs import PreferHeader, jobs_router, run_analysis
from odk_mcp.services.analytics.api.render import to_json
from odk_mcp.services.analytics.domain.survey import Design

if TYPE_CHECKING:
    pass

router = APIRouter(tags=["analytics"])
router.include_router(jobs_router)

BASE = "/v1/projects/{project_id}/forms/{xml_form_id}/analytics"
Filter = Annotated[str | None, Query(alias="$filter", max_length=4000)]
Confidence = Annotated[float, Query(gt=0.5, lt=1.0)]
FieldPath = Annotated[str, Query(min_length=2, max_length=1000, pattern=r"^/")]
OptionalPath = Annotated[str | None, Query(min_length=2, max_length=1000)]


@router.get(BASE + "/crosstab")
async def crosstab(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    service: Analytics,
    row: FieldPath,
    col: FieldPath,
    odata_filter: Filter = None,
    test: Literal["auto", "chi2", "fisher", "none"] = "auto",
    suppress_below: Annotated[int | None, Query(alias="suppressBelow", ge=2, le=1000)] = None,
) -> Any:
    result = await service.statistics.crosstab(
        actor, project_id, xml_form_id, row, col, test, suppress_below, odata_filter
    )
    return to_json(result)


@router.get(BASE + "/compare")
async def compare(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    service: Analytics,
    value: FieldPath,
    group: FieldPath,
    odata_filter: Filter = None,
    method: Literal["auto", "welch", "anova", "welch_anova", "kruskal"] = "auto",
    confidence: Confidence = 0.95,
) -> Any:
    result = await service.statistics.compare(
        actor, project_id, xml_form_id, value, group, method, confidence, odata_filter
    )
    return to_json(result)


@router.get(BASE + "/correlate")
async def correlate(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    service: Analytics,
    fields: Annotated[str, Query(min_length=3, max_length=8000, description="comma-separated field paths")],
    odata_filter: Filter = None,
    method: Literal["pearson", "spearman"] = "pearson",
    confidence: Confidence = 0.95,
) -> Any:
    paths = [p.strip() for p in fields.split(",") if p.strip()]
    result = await service.statistics.correlate(
        actor, project_id, xml_form_id, paths, method, confidence, odata_filter
    )
    return {"correlations": to_json(result)}


@router.get(BASE + "/estimate")
async def estimate(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    service: Analytics,
    field: FieldPath,
    odata_filter: Filter = None,
    weights: OptionalPath = None,
    strata: OptionalPath = None,
    clusters: OptionalPath = None,
    confidence: Confidence = 0.95,
) -> Any:
    design = Design(weights=weights, strata=strata, clusters=clusters)
    result = await service.statistics.estimate(
        actor, project_id, xml_form_id, field, design, confidence, odata_filter
    )
    return to_json(result)


@router.get(BASE + "/timeseries")
async def timeseries(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    service: Analytics,
    odata_filter: Filter = None,
    interval: Literal["day", "week"] = "day",
    split_by: Annotated[Literal["none", "enumerator", "form_version"], Query(alias="splitBy")] = "none",
    time_zone: Annotated[str, Query(alias="timeZone", max_length=64)] = "UTC",
) -> Any:
    result = await service.statistics.timeseries(
        actor, project_id, xml_form_id, interval, split_by, time_zone, odata_filter
    )
    return to_json(result)


@router.get(BASE + "/themes")
async def themes(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    service: Analytics,
    field: FieldPath,
    odata_filter: Filter = None,
    max_themes: Annotated[int, Query(alias="maxThemes", ge=2, le=20)] = 8,
    quotes: Annotated[int, Query(ge=1, le=100)] = 5,
) -> Any:
    result = await service.themes.themes(
        actor, project_id, xml_form_id, field, odata_filter, max_themes, quotes
    )
    return to_json(result)


@router.post(BASE + "/quality")
async def rescan(
    project_id: int, xml_form_id: str, actor: CurrentActor, service: Analytics, prefer: PreferHeader = None
) -> Any:
    return await run_analysis(service, actor, project_id, xml_form_id, AnalysisKind.QUALITY, prefer)


@router.get(BASE + "/quality")
async def findings(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    service: Analytics,
    submission_id: Annotated[int | None, Query(alias="submissionId")] = None,
    enumerator: Annotated[str | None, Query(max_length=200)] = None,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    include_dismissed: Annotated[bool, Query(alias="includeDismissed")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    page = await service.quality.findings(
        actor, project_id, xml_form_id, submission_id, enumerator, rule, include_dismissed, limit, offset
    )
    return {"total": page.total, "findings": to_json(page.findings)}


class DismissalBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    comment: str = Field(max_length=2000)


@router.post(BASE + "/quality/findings/{finding_id}/dismissal")
async def dismiss(
    project_id: int,
    xml_form_id: str,
    finding_id: int,
    body: DismissalBody,
    actor: CurrentActor,
    service: Analytics,
) -> Any:
    return to_json(await service.quality.dismiss(actor, project_id, xml_form_id, finding_id, body.comment))


@router.get(BASE + "/enumerators")
async def enumerators(
    project_id: int, xml_form_id: str, actor: CurrentActor, service: Analytics, prefer: PreferHeader = None
) -> Any:
    return await run_analysis(service, actor, project_id, xml_form_id, AnalysisKind.ENUMERATORS, prefer)


@router.get(BASE + "/report.html")
async def report_html(
    project_id: int, xml_form_id: str, actor: CurrentActor, service: Analytics, prefer: PreferHeader = None
) -> Response:
    return await run_analysis(service, actor, project_id, xml_form_id, AnalysisKind.REPORT_HTML, prefer)


@router.get(BASE + "/report.pdf")
async def report_pdf(
    project_id: int, xml_form_id: str, actor: CurrentActor, service: Analytics, prefer: PreferHeader = None
) -> Response:
    return await run_analysis(service, actor, project_id, xml_form_id, AnalysisKind.REPORT_PDF, prefer)


class AreaBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    box: list[float] | None = None
    polygon: list[list[float]] | None = None


@router.get("/v1/projects/{project_id}/analytics/area")
async def get_area(project_id: int, actor: CurrentActor, service: Analytics) -> Any:
    area = await service.quality.area(actor, project_id)
    if area is None:
        raise Problem(problems.NOT_FOUND, "The project has no area set.")
    return area


@router.put("/v1/projects/{project_id}/analytics/area")
async def put_area(project_id: int, body: AreaBody, actor: CurrentActor, service: Analytics) -> Any:
    area = {k: v for k, v in body.model_dump().items() if v is not None}
    return await service.quality.set_area(actor, project_id, area)


@router.delete("/v1/projects/{project_id}/analytics/area")
async def delete_area(project_id: int, actor: CurrentActor, service: Analytics) -> Any:
    await service.quality.set_area(actor, project_id, None)
    return success()
