"""Changing a password needs the old one, and guessing it is throttled like logging in."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from tests.conftest import PASSWORD, MakeUser

from odk_mcp.bootstrap import Container


async def stored_hash(container: Container, user_id: int) -> str:
    async with container.db.read() as conn:
        row = await conn.execute(
            text("SELECT password_hash FROM users.actors WHERE id = :id"), {"id": user_id}
        )
        return str(row.scalar_one())


async def test_guessing_the_old_password_is_throttled(
    client: httpx.AsyncClient, make_user: MakeUser, container: Container
) -> None:
    person = await make_user()
    before = await stored_hash(container, person.id)
    url = f"/v1/users/{person.id}/password"
    for attempt in range(5):
        wrong = await client.put(
            url, json={"old": f"wrong guess {attempt}", "new": "a brand new passphrase"}, headers=person.auth
        )
        assert wrong.status_code == 401
        assert wrong.json()["code"] == 401.2
    blocked = await client.put(
        url, json={"old": PASSWORD, "new": "a brand new passphrase"}, headers=person.auth
    )
    assert blocked.status_code == 429
    assert blocked.json()["code"] == 429.1
    assert int(blocked.headers["retry-after"]) >= 1
    assert await stored_hash(container, person.id) == before, "a refused change changes nothing"


async def test_logging_in_sweeps_the_users_expired_sessions(
    client: httpx.AsyncClient, make_user: MakeUser, container: Container
) -> None:
    person = await make_user()
    async with container.db.transaction() as conn:
        await conn.execute(
            text("UPDATE users.sessions SET expires_at = now() - interval '1 day' WHERE actor_id = :id"),
            {"id": person.id},
        )
    again = await client.post("/v1/sessions", json={"email": person.email, "password": PASSWORD})
    assert again.status_code == 200
    async with container.db.read() as conn:
        rows = (
            (
                await conn.execute(
                    text("SELECT expires_at > now() FROM users.sessions WHERE actor_id = :id"),
                    {"id": person.id},
                )
            )
            .scalars()
            .all()
        )
    assert rows == [True], "only the new session is left"
