"""Who is calling: bearer tokens of the users service verified for the MCP endpoint, and the
caller of one tool call (over HTTP from the verified token, over stdio from the configured one).

The verifier is the SDK's `TokenVerifier`: the SDK's bearer middleware answers 401 with the
protected-resource-metadata link when it returns None. The users service decides what a token
is worth (an API token: its scopes; a web login session: every scope).
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import PrivateAttr

from odk_mcp.services.users import ScopedActor, UsersService


class CallerToken(AccessToken):
    """The SDK's access token, carrying the users service's answer for this request."""

    _caller: ScopedActor | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, caller: ScopedActor) -> CallerToken:
        token = cls(
            token="",  # the secret is not kept past verification
            client_id=f"actor:{caller.actor.id}",
            subject=str(caller.actor.id),
            scopes=sorted(caller.scopes),
            expires_at=int(caller.expires_at.timestamp()) if caller.expires_at else None,
        )
        token._caller = caller
        return token

    @property
    def caller(self) -> ScopedActor:
        assert self._caller is not None
        return self._caller


class UsersTokenVerifier:
    """`TokenVerifier` over the users service."""

    def __init__(self, users: UsersService) -> None:
        self._users = users

    async def verify_token(self, token: str) -> AccessToken | None:
        caller = await self._users.api_tokens.verify_bearer(token)
        return CallerToken.of(caller) if caller is not None else None


class Callers:
    """Resolves the caller of a tool call.

    With a fixed token (stdio, and in-process tests) the token is verified again on every call,
    so a revoked or expired token stops working at once. Without one, the caller is the one the
    HTTP bearer middleware verified for this request.
    """

    def __init__(self, users: UsersService, token: str | None = None) -> None:
        self._users = users
        self._token = token

    async def current(self, request: Any = None) -> ScopedActor:
        if self._token is not None:
            caller = await self._users.api_tokens.verify_bearer(self._token)
            if caller is None:
                raise ToolError(
                    "Authentication failed: the configured token is not valid (revoked or expired?)."
                )
            return caller
        user = getattr(request, "scope", {}).get("user") if request is not None else None
        token = user.access_token if isinstance(user, AuthenticatedUser) else get_access_token()
        if isinstance(token, CallerToken):
            return token.caller
        raise ToolError("Authentication required.")
