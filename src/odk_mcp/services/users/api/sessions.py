"""`/v1/sessions`: log in with email and password, log out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from odk_mcp.kernel.web import CurrentActor, success
from odk_mcp.services.users.api.deps import Users
from odk_mcp.services.users.api.schemas import LoginBody

router = APIRouter(tags=["sessions"])

SESSION_COOKIE = "__Host-session"


@router.post("/v1/sessions")
async def login(body: LoginBody, request: Request, response: Response, users: Users) -> dict[str, Any]:
    client_ip = request.client.host if request.client else None
    session = await users.accounts.login(body.email, body.password, client_ip)
    # Browsers (and Enketo) use the cookie; API clients use the token in the body.
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        httponly=True,
        secure=True,
        samesite="strict",
        path="/",
        max_age=session.max_age_seconds(),
    )
    return session.to_json()


@router.delete("/v1/sessions/current")
async def logout_current(actor: CurrentActor, response: Response, users: Users) -> dict[str, bool]:
    await users.accounts.logout(actor)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return success()


@router.delete("/v1/sessions/{token}")
async def logout_token(token: str, actor: CurrentActor, users: Users) -> dict[str, bool]:
    await users.accounts.logout(actor, token=token)
    return success()
