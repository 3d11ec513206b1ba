"""`/v1/projects/{p}/forms/{f}/public-links`: anonymous web-form respondents of one form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from odk_mcp.kernel.web import CurrentActor, RowId, extended, success
from odk_mcp.services.users.api.deps import Users
from odk_mcp.services.users.api.schemas import PublicLinkBody

router = APIRouter(tags=["public links"])

PATH = "/v1/projects/{project_id}/forms/{xml_form_id}/public-links"


@router.get(PATH)
async def list_public_links(
    project_id: RowId, xml_form_id: str, actor: CurrentActor, users: Users, request: Request
) -> list[dict[str, Any]]:
    links = await users.public_links.list_links(actor, project_id, xml_form_id)
    return [link.to_json(extended(request)) for link in links]


@router.post(PATH)
async def create_public_link(
    project_id: RowId, xml_form_id: str, body: PublicLinkBody, actor: CurrentActor, users: Users
) -> dict[str, Any]:
    link = await users.public_links.create(actor, project_id, xml_form_id, body.displayName, body.once)
    return link.to_json()


@router.delete(PATH + "/{link_id}")
async def delete_public_link(
    project_id: RowId, xml_form_id: str, link_id: RowId, actor: CurrentActor, users: Users
) -> dict[str, bool]:
    await users.public_links.delete(actor, project_id, xml_form_id, link_id)
    return success()
