"""`/v1/users/current/tokens`: a web user's long-lived API tokens for assistants (MCP)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from odk_mcp.kernel.web import CurrentActor, RowId, success
from odk_mcp.services.users.api.deps import Users
from odk_mcp.services.users.api.schemas import ApiTokenBody

router = APIRouter(tags=["api tokens"])


@router.get("/v1/users/current/tokens")
async def list_tokens(actor: CurrentActor, users: Users) -> list[dict[str, Any]]:
    return [t.to_json() for t in await users.api_tokens.list_tokens(actor)]


@router.post("/v1/users/current/tokens")
async def create_token(body: ApiTokenBody, actor: CurrentActor, users: Users) -> dict[str, Any]:
    view = await users.api_tokens.create(actor, body.name, body.scopes, body.expiresAt)
    return view.to_json()


@router.delete("/v1/users/current/tokens/{token_id}")
async def revoke_token(token_id: RowId, actor: CurrentActor, users: Users) -> dict[str, bool]:
    await users.api_tokens.revoke(actor, token_id)
    return success()
