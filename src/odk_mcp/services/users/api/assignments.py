"""Role assignments: sitewide `/v1/assignments`, per project, per form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from odk_mcp.kernel.web import CurrentActor, RowId, extended, success
from odk_mcp.services.users.api.deps import Users
from odk_mcp.services.users.assignments import Scope

router = APIRouter(tags=["assignments"])

_PREFIXES = {
    "site": "/v1/assignments",
    "project": "/v1/projects/{project_id}/assignments",
    "form": "/v1/projects/{project_id}/forms/{form_id}/assignments",
}


async def _list(users: Users, actor: CurrentActor, request: Request, scope: Scope) -> list[dict[str, Any]]:
    pairs = await users.assignments.list_assignments(actor, scope)
    if not extended(request):
        return pairs
    # Extended metadata: each assignment carries the full actor (Central's shape).
    by_role: dict[int, dict[int, Any]] = {}
    for pair in pairs:
        by_role.setdefault(pair["roleId"], {})
    for role_id in by_role:
        for view in await users.assignments.list_actors(actor, scope, str(role_id)):
            by_role[role_id][view.id] = view.to_json()
    return [{"actor": by_role[p["roleId"]].get(p["actorId"]), "roleId": p["roleId"]} for p in pairs]


def _scope(project_id: int | None = None, form_id: str | None = None) -> Scope:
    return Scope(project_id=project_id, form_id=form_id)


# Sitewide.
@router.get(_PREFIXES["site"])
async def list_site(actor: CurrentActor, users: Users, request: Request) -> list[dict[str, Any]]:
    return await _list(users, actor, request, _scope())


@router.get(_PREFIXES["site"] + "/{role}")
async def list_site_role(role: str, actor: CurrentActor, users: Users) -> list[dict[str, Any]]:
    return [v.to_json() for v in await users.assignments.list_actors(actor, _scope(), role)]


@router.post(_PREFIXES["site"] + "/{role}/{actor_id}")
async def assign_site(role: str, actor_id: RowId, actor: CurrentActor, users: Users) -> dict[str, bool]:
    await users.assignments.assign(actor, _scope(), role, actor_id)
    return success()


@router.delete(_PREFIXES["site"] + "/{role}/{actor_id}")
async def unassign_site(role: str, actor_id: RowId, actor: CurrentActor, users: Users) -> dict[str, bool]:
    await users.assignments.unassign(actor, _scope(), role, actor_id)
    return success()


# Per project.
@router.get(_PREFIXES["project"])
async def list_project(
    project_id: RowId, actor: CurrentActor, users: Users, request: Request
) -> list[dict[str, Any]]:
    return await _list(users, actor, request, _scope(project_id))


@router.get(_PREFIXES["project"] + "/{role}")
async def list_project_role(
    project_id: RowId, role: str, actor: CurrentActor, users: Users
) -> list[dict[str, Any]]:
    return [v.to_json() for v in await users.assignments.list_actors(actor, _scope(project_id), role)]


@router.post(_PREFIXES["project"] + "/{role}/{actor_id}")
async def assign_project(
    project_id: RowId, role: str, actor_id: RowId, actor: CurrentActor, users: Users
) -> dict[str, bool]:
    await users.assignments.assign(actor, _scope(project_id), role, actor_id)
    return success()


@router.delete(_PREFIXES["project"] + "/{role}/{actor_id}")
async def unassign_project(
    project_id: RowId, role: str, actor_id: RowId, actor: CurrentActor, users: Users
) -> dict[str, bool]:
    await users.assignments.unassign(actor, _scope(project_id), role, actor_id)
    return success()


# Per form.
@router.get(_PREFIXES["form"])
async def list_form(
    project_id: RowId, form_id: str, actor: CurrentActor, users: Users, request: Request
) -> list[dict[str, Any]]:
    return await _list(users, actor, request, _scope(project_id, form_id))


@router.get(_PREFIXES["form"] + "/{role}")
async def list_form_role(
    project_id: RowId, form_id: str, role: str, actor: CurrentActor, users: Users
) -> list[dict[str, Any]]:
    return [
        v.to_json() for v in await users.assignments.list_actors(actor, _scope(project_id, form_id), role)
    ]


@router.post(_PREFIXES["form"] + "/{role}/{actor_id}")
async def assign_form(
    project_id: RowId, form_id: str, role: str, actor_id: RowId, actor: CurrentActor, users: Users
) -> dict[str, bool]:
    await users.assignments.assign(actor, _scope(project_id, form_id), role, actor_id)
    return success()


@router.delete(_PREFIXES["form"] + "/{role}/{actor_id}")
async def unassign_form(
    project_id: RowId, form_id: str, role: str, actor_id: RowId, actor: CurrentActor, users: Users
) -> dict[str, bool]:
    await users.assignments.unassign(actor, _scope(project_id, form_id), role, actor_id)
    return success()
