"""`/v1/projects/{p}/app-users`: device identities for ODK Collect."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from odk_mcp.kernel.web import CurrentActor, RowId, success
from odk_mcp.services.users.api.deps import Users
from odk_mcp.services.users.api.schemas import AppUserBody

router = APIRouter(tags=["app users"])


@router.get("/v1/projects/{project_id}/app-users")
async def list_app_users(project_id: RowId, actor: CurrentActor, users: Users) -> list[dict[str, Any]]:
    return [v.to_json() for v in await users.app_users.list_app_users(actor, project_id)]


@router.post("/v1/projects/{project_id}/app-users")
async def create_app_user(
    project_id: RowId, body: AppUserBody, actor: CurrentActor, users: Users
) -> dict[str, Any]:
    return (await users.app_users.create(actor, project_id, body.displayName)).to_json()


@router.delete("/v1/projects/{project_id}/app-users/{app_user_id}")
async def delete_app_user(
    project_id: RowId, app_user_id: RowId, actor: CurrentActor, users: Users
) -> dict[str, bool]:
    await users.app_users.delete(actor, project_id, app_user_id)
    return success()
