"""Long-lived API tokens a user creates for assistants (the MCP server), and bearer verification.

A token is shown once, when it is created; only its hash is stored, like sessions. Each token
carries scopes (domain/scopes.py) that narrow what it reaches; the user's roles still decide
every permission. API tokens are accepted by the MCP endpoint only, never by the REST API, so a
narrowly scoped token can never be used for everything the user could do over REST.

`verify_bearer` is what the MCP token verifier calls: an API token gives its scopes; a login
session (the web user's own bearer token) gives every scope, the same full rights the session
has over REST (ODK Central's model: a session acts as its user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor, ActorType, AuthMethod
from odk_mcp.kernel.clock import iso, utcnow
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.accounts import MAX_NAME_LENGTH
from odk_mcp.services.users.adapters import store
from odk_mcp.services.users.adapters.tables import api_tokens
from odk_mcp.services.users.authentication import Authenticator, CredentialKind, Credentials, actor_from_row
from odk_mcp.services.users.domain import credentials as cred
from odk_mcp.services.users.domain.scopes import ALL_SCOPES, unknown_scopes

# Recognisable in logs and secret scanners, and tells the verifier which table to look in.
TOKEN_PREFIX = "odkpat_"  # noqa: S105 - a public prefix, not a secret
MAX_TOKENS_PER_USER = 50
MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True)
class ScopedActor:
    """Who a bearer token acts for, and the scopes it carries."""

    actor: Actor
    scopes: frozenset[str]
    kind: str  # "api_token" | "session"
    token_id: int | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ApiTokenView:
    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    token: str | None = None  # only in the response that created it

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.expires_at),
            "lastUsedAt": iso(self.last_used_at),
        }
        if self.token is not None:
            body["token"] = self.token
        return body


def _view(row: Any, token: str | None = None) -> ApiTokenView:
    return ApiTokenView(
        id=row["id"],
        name=row["name"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        token=token,
    )


_ACTOR_BY_API_TOKEN = text(
    "SELECT t.id AS token_id, t.scopes, t.expires_at, a.id, a.type, a.display_name, a.project_id, "  # noqa: S608 - constant SQL only
    + store.GRANTS_COLUMN
    + " FROM users.api_tokens t JOIN users.actors a ON a.id = t.actor_id"
    " WHERE t.token_hash = :token_hash AND a.deleted_at IS NULL AND a.type = 'user'"
    " AND (t.expires_at IS NULL OR t.expires_at > now())"
)


def _owner(actor: Actor) -> Actor:
    """Only web users hold API tokens, and only they manage their own."""
    if actor.anonymous:
        raise Problem(problems.AUTHENTICATION_REQUIRED)
    if actor.type is not ActorType.USER:
        raise Problem(problems.INSUFFICIENT_RIGHTS, "Only web users can hold API tokens.")
    return actor


class ApiTokens:
    def __init__(self, db: Database, authenticator: Authenticator) -> None:
        self._db = db
        self._authenticator = authenticator

    async def create(
        self, actor: Actor, name: str, scopes: list[str], expires_at: datetime | None
    ) -> ApiTokenView:
        _owner(actor)
        name = name.strip()
        if not name:
            raise Problem(problems.UNEXPECTED_VALUE, "name must not be empty.", {"field": "name"})
        if len(name) > MAX_NAME_LENGTH:
            raise Problem(problems.VALUE_TOO_LONG, details={"field": "name", "max": MAX_NAME_LENGTH})
        unknown = unknown_scopes(scopes)
        if unknown or not scopes:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                f"scopes must be a non-empty list of: {', '.join(ALL_SCOPES)}.",
                {"field": "scopes", "unknown": unknown, "allowed": list(ALL_SCOPES)},
            )
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise Problem(
                    problems.UNEXPECTED_VALUE, "expiresAt needs a timezone offset.", {"field": "expiresAt"}
                )
            if expires_at <= utcnow():
                raise Problem(
                    problems.UNEXPECTED_VALUE, "expiresAt must be in the future.", {"field": "expiresAt"}
                )
        token = TOKEN_PREFIX + cred.new_token()
        ordered = [s for s in ALL_SCOPES if s in scopes]
        async with self._db.transaction() as conn:
            held = (
                await conn.execute(
                    select(func.count()).select_from(api_tokens).where(api_tokens.c.actor_id == actor.id)
                )
            ).scalar_one()
            if held >= MAX_TOKENS_PER_USER:
                raise Problem(
                    problems.UNEXPECTED_VALUE,
                    f"A user can hold at most {MAX_TOKENS_PER_USER} API tokens; revoke one first.",
                    {"max": MAX_TOKENS_PER_USER},
                )
            row = (
                (
                    await conn.execute(
                        api_tokens.insert()
                        .values(
                            actor_id=actor.id,
                            name=name,
                            token_hash=cred.hash_token(token),
                            scopes=ordered,
                            expires_at=expires_at,
                            created_at=func.now(),
                        )
                        .returning(api_tokens)
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(
                conn,
                actor,
                "user.token.create",
                "actor",
                actor.id,
                details={"tokenId": row["id"], "name": name, "scopes": ordered},
            )
        return _view(row, token=token)

    async def list_tokens(self, actor: Actor) -> list[ApiTokenView]:
        _owner(actor)
        stmt = (
            select(api_tokens)
            .where(api_tokens.c.actor_id == actor.id)
            .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [_view(r) for r in rows]

    async def revoke(self, actor: Actor, token_id: int) -> None:
        _owner(actor)
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.actor_id == actor.id)
            )
            if result.rowcount == 0:
                raise Problem(problems.NOT_FOUND)
            await record_audit(
                conn, actor, "user.token.delete", "actor", actor.id, details={"tokenId": token_id}
            )

    async def verify_bearer(self, token: str) -> ScopedActor | None:
        """The web user a bearer token (API token or login session) acts for; None if it is not valid."""
        if not token or len(token) > MAX_TOKEN_LENGTH or "\x00" in token:
            return None
        if token.startswith(TOKEN_PREFIX):
            return await self._by_api_token(token)
        try:
            actor = await self._authenticator.authenticate(Credentials(CredentialKind.BEARER, token=token))
        except Problem:
            return None
        if actor.type is not ActorType.USER:
            return None  # app users and public links are for data collection, not assistants
        return ScopedActor(actor=actor, scopes=frozenset(ALL_SCOPES), kind="session")

    async def _by_api_token(self, token: str) -> ScopedActor | None:
        async with self._db.transaction() as conn:
            row = (
                (await conn.execute(_ACTOR_BY_API_TOKEN, {"token_hash": cred.hash_token(token)}))
                .mappings()
                .first()
            )
            if row is None:
                return None
            # Remembered at most once a minute, so verifying stays (almost always) read-only.
            await conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.id == row["token_id"],
                    (api_tokens.c.last_used_at.is_(None))
                    | (api_tokens.c.last_used_at < func.now() - text("interval '1 minute'")),
                )
                .values(last_used_at=func.now())
            )
        return ScopedActor(
            actor=actor_from_row(row, AuthMethod.BEARER),
            scopes=frozenset(row["scopes"]),
            kind="api_token",
            token_id=row["token_id"],
            expires_at=row["expires_at"],
        )
