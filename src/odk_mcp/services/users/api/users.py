"""`/v1/users`: web user accounts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, RowId, extended, success
from odk_mcp.services.users.api.deps import Users
from odk_mcp.services.users.api.schemas import NewUserBody, PasswordBody, UserPatchBody

router = APIRouter(tags=["users"])


@router.get("/v1/users")
async def list_users(
    actor: CurrentActor, users: Users, q: str | None = Query(default=None, max_length=200)
) -> list[dict[str, Any]]:
    return [u.to_json() for u in await users.accounts.list_users(actor, q)]


@router.post("/v1/users")
async def create_user(body: NewUserBody, actor: CurrentActor, users: Users) -> dict[str, Any]:
    view = await users.accounts.create_user(actor, body.email, body.password, body.displayName)
    return view.to_json()


@router.get("/v1/users/current")
async def current_user(actor: CurrentActor, users: Users, request: Request) -> dict[str, Any]:
    if actor.anonymous:
        raise Problem(problems.AUTHENTICATION_REQUIRED)
    if actor.type != "user":
        raise Problem(problems.NOT_FOUND, "Only web users have a user record.")
    body = (await users.accounts.get_user(actor, actor.id)).to_json()
    if extended(request):
        body["verbs"] = users.accounts.sitewide_verbs(actor)
    return body


@router.get("/v1/users/{user_id}")
async def get_user(user_id: RowId, actor: CurrentActor, users: Users) -> dict[str, Any]:
    return (await users.accounts.get_user(actor, user_id)).to_json()


@router.patch("/v1/users/{user_id}")
async def update_user(
    user_id: RowId, body: UserPatchBody, actor: CurrentActor, users: Users
) -> dict[str, Any]:
    view = await users.accounts.update_user(actor, user_id, body.email, body.displayName)
    return view.to_json()


@router.put("/v1/users/{user_id}/password")
async def change_password(
    user_id: RowId, body: PasswordBody, actor: CurrentActor, users: Users
) -> dict[str, bool]:
    await users.accounts.change_password(actor, user_id, body.old, body.new)
    return success()


@router.delete("/v1/users/{user_id}")
async def delete_user(user_id: RowId, actor: CurrentActor, users: Users) -> dict[str, bool]:
    await users.accounts.delete_user(actor, user_id)
    return success()
