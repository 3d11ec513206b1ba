"""`/v1/roles`: the built-in roles and their verbs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from odk_mcp.kernel.web import CurrentActor
from odk_mcp.services.users.api.deps import Users
from odk_mcp.services.users.views import role_json

router = APIRouter(tags=["roles"])


@router.get("/v1/roles")
async def list_roles(actor: CurrentActor, users: Users) -> list[dict[str, Any]]:
    return [role_json(r) for r in users.assignments.list_roles(actor)]


@router.get("/v1/roles/{key}")
async def get_role(key: str, actor: CurrentActor, users: Users) -> dict[str, Any]:
    return role_json(users.assignments.get_role(actor, key))
