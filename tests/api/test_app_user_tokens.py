"""App-user tokens: looked up by hash, shown again to managers from a sealed copy (as ODK
Central lists them), and gone once access is revoked."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.infra.sealing import Sealer, load_or_create_key


async def test_listing_shows_the_token_of_an_active_app_user_and_never_stores_it_in_clear(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()["id"]
    created = (
        await client.post(f"/v1/projects/{pid}/app-users", json={"displayName": "Tablet"}, headers=admin.auth)
    ).json()
    listed = (await client.get(f"/v1/projects/{pid}/app-users", headers=admin.auth)).json()
    assert [u["token"] for u in listed] == [created["token"]]
    async with container.db.read() as conn:
        dump = (await conn.execute(text("SELECT row_to_json(a)::text FROM users.actors a"))).scalars().all()
        sessions = (
            (await conn.execute(text("SELECT row_to_json(s)::text FROM users.sessions s"))).scalars().all()
        )
    assert all(created["token"] not in row for row in [*dump, *sessions])


async def test_revoking_an_app_users_session_ends_access_and_hides_the_token(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()["id"]
    created = (
        await client.post(f"/v1/projects/{pid}/app-users", json={"displayName": "Tablet"}, headers=admin.auth)
    ).json()
    token = created["token"]
    form_list = f"/v1/key/{token}/projects/{pid}/formList"
    openrosa = {"X-OpenRosa-Version": "1.0"}
    assert (await client.get(form_list, headers=openrosa)).status_code == 200
    revoked = await client.delete(f"/v1/sessions/{token}", headers=admin.auth)
    assert revoked.json() == {"success": True}
    assert (await client.get(form_list, headers=openrosa)).status_code == 403
    listed = (await client.get(f"/v1/projects/{pid}/app-users", headers=admin.auth)).json()
    assert [(u["id"], u["token"]) for u in listed] == [(created["id"], None)]


def test_sealed_tokens_open_only_with_their_key(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "secret.key"
    key = load_or_create_key(path)
    assert load_or_create_key(path) == key, "the key is created once and then reused"
    assert path.stat().st_mode & 0o777 == 0o600
    sealed = Sealer(key).seal("the-token")
    assert "the-token" not in sealed
    assert Sealer(key).unseal(sealed) == "the-token"
    other = load_or_create_key(path.with_name("other.key"))
    assert Sealer(other).unseal(sealed) is None
