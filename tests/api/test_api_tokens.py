"""API tokens: created by a web user for an assistant, shown once, stored hashed, scoped,
listed and revoked by their owner, accepted by the MCP verifier and never by the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container


async def test_a_token_is_shown_once_stored_hashed_and_listed_without_its_secret(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    created = await client.post(
        "/v1/users/current/tokens",
        json={"name": "Claude", "scopes": ["submissions", "read"]},
        headers=admin.auth,
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["token"].startswith("odkpat_")
    assert body["scopes"] == ["read", "submissions"]
    assert body["expiresAt"] is None
    listed = (await client.get("/v1/users/current/tokens", headers=admin.auth)).json()
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0]
    async with container.db.read() as conn:
        rows = (
            (await conn.execute(text("SELECT row_to_json(t)::text FROM users.api_tokens t"))).scalars().all()
        )
    assert rows and all(body["token"] not in row for row in rows)


async def test_the_verifier_gives_the_tokens_scopes_and_a_session_every_scope(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    token = (
        await client.post(
            "/v1/users/current/tokens", json={"name": "a", "scopes": ["read"]}, headers=admin.auth
        )
    ).json()["token"]
    verified = await container.users.api_tokens.verify_bearer(token)
    assert verified is not None and verified.actor.id == admin.id
    assert verified.scopes == frozenset({"read"}) and verified.kind == "api_token"
    session = await container.users.api_tokens.verify_bearer(admin.token)
    assert session is not None and session.kind == "session"
    assert session.scopes == frozenset({"read", "submissions", "pii", "review", "forms.write"})
    assert await container.users.api_tokens.verify_bearer("odkpat_" + "x" * 60) is None
    assert await container.users.api_tokens.verify_bearer("not-a-token") is None


async def test_the_rest_api_refuses_an_api_token(client: httpx.AsyncClient, admin: Person) -> None:
    token = (
        await client.post(
            "/v1/users/current/tokens", json={"name": "a", "scopes": ["read"]}, headers=admin.auth
        )
    ).json()["token"]
    response = await client.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_revoking_ends_the_token_and_only_the_owner_can_revoke(
    client: httpx.AsyncClient, make_user: MakeUser, container: Container
) -> None:
    alice, bob = await make_user(), await make_user()
    created = (
        await client.post(
            "/v1/users/current/tokens", json={"name": "a", "scopes": ["read"]}, headers=alice.auth
        )
    ).json()
    other = await client.delete(f"/v1/users/current/tokens/{created['id']}", headers=bob.auth)
    assert other.status_code == 404
    assert await container.users.api_tokens.verify_bearer(created["token"]) is not None
    gone = await client.delete(f"/v1/users/current/tokens/{created['id']}", headers=alice.auth)
    assert gone.status_code == 200
    assert await container.users.api_tokens.verify_bearer(created["token"]) is None
    assert (await client.get("/v1/users/current/tokens", headers=alice.auth)).json() == []


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    created = (
        await client.post(
            "/v1/users/current/tokens",
            json={"name": "a", "scopes": ["read"], "expiresAt": soon.isoformat()},
            headers=admin.auth,
        )
    ).json()
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE users.api_tokens SET expires_at = now() - interval '1 second'"))
    assert await container.users.api_tokens.verify_bearer(created["token"]) is None


async def test_bad_token_requests_are_refused_with_codes(client: httpx.AsyncClient, admin: Person) -> None:
    cases = [
        {"name": "a", "scopes": ["everything"]},
        {"name": "a", "scopes": []},
        {"name": " ", "scopes": ["read"]},
        {"name": "a", "scopes": ["read"], "expiresAt": "2001-01-01T00:00:00Z"},
        {"name": "a", "scopes": ["read"], "expiresAt": "2999-01-01T00:00:00"},
    ]
    for body in cases:
        response = await client.post("/v1/users/current/tokens", json=body, headers=admin.auth)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == 400.8
    assert (await client.get("/v1/users/current/tokens", headers=admin.auth)).json() == []
    anonymous = await client.post("/v1/users/current/tokens", json={"name": "a", "scopes": ["read"]})
    assert anonymous.status_code == 401
