"""`/v1/projects/{p}/forms/{f}/sensitivity`: which fields hold personal data (for assistants)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from odk_mcp.kernel.web import CurrentActor, RequestBody, RowId
from odk_mcp.services.forms.api.deps import Forms

router = APIRouter(tags=["forms"])

PATH = "/v1/projects/{project_id}/forms/{xml_form_id}/sensitivity"


class SensitivityBody(RequestBody):
    fields: dict[str, bool | None] = Field(max_length=2000)


@router.get(PATH)
async def get_sensitivity(
    project_id: RowId, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> dict[str, Any]:
    return (await forms.sensitivity.get(actor, project_id, xml_form_id)).to_json()


@router.patch(PATH)
async def update_sensitivity(
    project_id: RowId, xml_form_id: str, body: SensitivityBody, actor: CurrentActor, forms: Forms
) -> dict[str, Any]:
    view = await forms.sensitivity.update(actor, project_id, xml_form_id, body.fields)
    return view.to_json()
