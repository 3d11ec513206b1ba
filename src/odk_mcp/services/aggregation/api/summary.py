"""`GET /v1/projects/{p}/forms/{f}/summary` (and `…/draft/summary`): per-question summaries of
a form's data, filterable with the same OData `$filter` as feeds and exports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from odk_mcp.kernel.web import CurrentActor, RowId
from odk_mcp.services.aggregation.api.deps import Aggregation

router = APIRouter(tags=["summaries"])

FORM = "/v1/projects/{project_id}/forms/{xml_form_id}"


def _routes(prefix: str, draft: bool) -> None:
    async def summary(
        project_id: RowId,
        xml_form_id: str,
        actor: CurrentActor,
        service: Aggregation,
        odata_filter: str | None = Query(default=None, alias="$filter", max_length=4000),
        language: str | None = Query(default=None, max_length=100),
    ) -> dict[str, Any]:
        return await service.summaries.summarize(
            actor, project_id, xml_form_id, draft, (odata_filter or "").strip() or None, language
        )

    router.add_api_route(prefix + "/summary", summary, methods=["GET"], summary="Per-question summary")


_routes(FORM, draft=False)
_routes(FORM + "/draft", draft=True)
