"""`/v1/projects`: create, list, read, update and delete projects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from odk_mcp.kernel.web import CurrentActor, RequestBody, RowId, success

if TYPE_CHECKING:
    from odk_mcp.services.forms import FormsService

router = APIRouter(tags=["projects"])


def get_forms(request: Request) -> FormsService:
    return cast("FormsService", request.app.state.forms)


Forms = Annotated["FormsService", Depends(get_forms)]


class ProjectBody(RequestBody):
    name: str = Field(max_length=10_000)
    description: str | None = Field(default=None, max_length=100_000)


class ProjectPatch(RequestBody):
    name: str | None = Field(default=None, max_length=10_000)
    description: str | None = Field(default=None, max_length=100_000)
    archived: bool | None = None


@router.get("/v1/projects")
async def list_projects(actor: CurrentActor, forms: Forms) -> list[dict[str, Any]]:
    return [p.to_json() for p in await forms.projects.list_projects(actor)]


@router.post("/v1/projects")
async def create_project(body: ProjectBody, actor: CurrentActor, forms: Forms) -> dict[str, Any]:
    return (await forms.projects.create(actor, body.name, body.description)).to_json()


@router.get("/v1/projects/{project_id}")
async def get_project(project_id: RowId, actor: CurrentActor, forms: Forms) -> dict[str, Any]:
    return (await forms.projects.get(actor, project_id)).to_json()


@router.patch("/v1/projects/{project_id}")
async def update_project(
    project_id: RowId, body: ProjectPatch, actor: CurrentActor, forms: Forms
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        changes.pop("name")
    if changes.get("archived", False) is None:
        changes.pop("archived")
    return (await forms.projects.update(actor, project_id, changes)).to_json()


@router.delete("/v1/projects/{project_id}")
async def delete_project(project_id: RowId, actor: CurrentActor, forms: Forms) -> dict[str, bool]:
    await forms.projects.delete(actor, project_id)
    return success()
