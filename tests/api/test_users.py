"""`/v1/users`: web user accounts as ODK Central clients (and pyODK) see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from tests.conftest import PASSWORD, MakeUser, Person

USER_FIELDS = {"id", "type", "displayName", "email", "createdAt", "updatedAt", "deletedAt"}


def assert_iso(value: Any) -> datetime:
    """An ISO 8601 timestamp with an explicit offset (Z or ±hh:mm)."""
    assert isinstance(value, str)
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


async def create_user(client: httpx.AsyncClient, admin: Person, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/users", json=body, headers=admin.auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_admin_creates_a_user_with_central_shape(client: httpx.AsyncClient, admin: Person) -> None:
    body = await create_user(
        client, admin, email="ana@example.org", password=PASSWORD, displayName="Ana Enumerator"
    )

    assert set(body) == USER_FIELDS
    assert body["type"] == "user"
    assert body["email"] == "ana@example.org"
    assert body["displayName"] == "Ana Enumerator"
    assert isinstance(body["id"], int)
    assert_iso(body["createdAt"])
    assert body["updatedAt"] is None
    assert body["deletedAt"] is None
    fetched = await client.get(f"/v1/users/{body['id']}", headers=admin.auth)
    assert fetched.json() == body


async def test_a_user_created_without_display_name_is_named_by_email(
    client: httpx.AsyncClient, admin: Person
) -> None:
    body = await create_user(client, admin, email="nameless@example.org")
    assert body["displayName"] == "nameless@example.org"


async def test_new_user_can_log_in_with_the_password_set_at_creation(
    client: httpx.AsyncClient, admin: Person
) -> None:
    await create_user(client, admin, email="login@example.org", password=PASSWORD)
    response = await client.post("/v1/sessions", json={"email": "login@example.org", "password": PASSWORD})
    assert response.status_code == 200
    assert len(response.json()["token"]) >= 64


async def test_non_admin_cannot_create_or_list_users(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    someone = await make_user()
    created = await client.post("/v1/users", json={"email": "x@example.org"}, headers=someone.auth)
    assert created.status_code == 403
    assert created.json()["code"] == 403.1
    listed = await client.get("/v1/users", headers=someone.auth)
    assert listed.json()["code"] == 403.1


async def test_anonymous_listing_of_users_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users")
    assert response.status_code == 401
    assert response.json()["code"] == 401.1


async def test_user_list_is_filtered_by_q_on_email_and_display_name(
    client: httpx.AsyncClient, admin: Person
) -> None:
    await create_user(client, admin, email="alice@field.org", displayName="Alice Mwangi")
    await create_user(client, admin, email="bob@field.org", displayName="Bob Otieno")

    everyone = (await client.get("/v1/users", headers=admin.auth)).json()
    assert {u["email"] for u in everyone} == {"admin@example.org", "alice@field.org", "bob@field.org"}
    by_name = (await client.get("/v1/users", params={"q": "otieno"}, headers=admin.auth)).json()
    assert [u["email"] for u in by_name] == ["bob@field.org"]
    by_email = (await client.get("/v1/users", params={"q": "ALICE@"}, headers=admin.auth)).json()
    assert [u["email"] for u in by_email] == ["alice@field.org"]
    wildcard = (await client.get("/v1/users", params={"q": "%"}, headers=admin.auth)).json()
    assert wildcard == []


async def test_user_updates_own_display_name_and_email(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    me = await make_user("me@example.org")

    response = await client.patch(
        f"/v1/users/{me.id}", json={"displayName": "New Name", "email": "new@example.org"}, headers=me.auth
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["displayName"] == "New Name"
    assert body["email"] == "new@example.org"
    assert assert_iso(body["updatedAt"]) >= assert_iso(body["createdAt"])
    login = await client.post("/v1/sessions", json={"email": "new@example.org", "password": PASSWORD})
    assert login.status_code == 200


async def test_patch_with_only_display_name_keeps_the_email(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    me = await make_user("keep@example.org")
    response = await client.patch(f"/v1/users/{me.id}", json={"displayName": "Only Name"}, headers=me.auth)
    assert response.json()["email"] == "keep@example.org"
    assert response.json()["displayName"] == "Only Name"


async def test_admin_updates_another_user(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    other = await make_user("other@example.org")
    response = await client.patch(
        f"/v1/users/{other.id}", json={"displayName": "Renamed"}, headers=admin.auth
    )
    assert response.status_code == 200
    assert (await client.get(f"/v1/users/{other.id}", headers=admin.auth)).json()["displayName"] == "Renamed"


async def test_non_admin_cannot_patch_or_read_another_user(
    client: httpx.AsyncClient, make_user: MakeUser, admin: Person
) -> None:
    me = await make_user()
    victim = await make_user("victim@example.org")

    patched = await client.patch(f"/v1/users/{victim.id}", json={"displayName": "Pwned"}, headers=me.auth)
    read = await client.get(f"/v1/users/{victim.id}", headers=me.auth)

    assert patched.status_code == 403
    assert patched.json()["code"] == 403.1
    assert read.json()["code"] == 403.1
    unchanged = (await client.get(f"/v1/users/{victim.id}", headers=admin.auth)).json()
    assert unchanged["displayName"] == "victim@example.org"


async def test_creating_a_user_with_a_taken_email_is_409_whatever_the_case(
    client: httpx.AsyncClient, admin: Person
) -> None:
    await create_user(client, admin, email="dup@example.org")
    response = await client.post("/v1/users", json={"email": "DUP@Example.org"}, headers=admin.auth)
    assert response.status_code == 409
    assert response.json()["code"] == 409.3
    listed = (await client.get("/v1/users", params={"q": "dup"}, headers=admin.auth)).json()
    assert len(listed) == 1


async def test_changing_email_to_another_users_email_is_409(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("taken@example.org")
    me = await make_user("mine@example.org")
    response = await client.patch(f"/v1/users/{me.id}", json={"email": "Taken@EXAMPLE.org"}, headers=me.auth)
    assert response.status_code == 409
    assert response.json()["code"] == 409.3


async def test_changing_the_case_of_ones_own_email_is_allowed(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    me = await make_user("case@example.org")
    response = await client.patch(f"/v1/users/{me.id}", json={"email": "Case@example.org"}, headers=me.auth)
    assert response.status_code == 200
    assert response.json()["email"] == "Case@example.org"


async def test_deleted_user_disappears_loses_sessions_and_frees_the_email(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    gone = await make_user("gone@example.org")

    response = await client.delete(f"/v1/users/{gone.id}", headers=admin.auth)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    listed = (await client.get("/v1/users", headers=admin.auth)).json()
    assert "gone@example.org" not in {u["email"] for u in listed}
    assert (await client.get(f"/v1/users/{gone.id}", headers=admin.auth)).json()["code"] == 404.1
    session_over = await client.get("/v1/users/current", headers=gone.auth)
    assert session_over.status_code == 401
    assert session_over.json()["code"] == 401.2
    login = await client.post("/v1/sessions", json={"email": "gone@example.org", "password": PASSWORD})
    assert login.status_code == 401
    again = await create_user(client, admin, email="gone@example.org")
    assert again["id"] != gone.id


async def test_deleting_a_user_twice_is_404(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    gone = await make_user()
    await client.delete(f"/v1/users/{gone.id}", headers=admin.auth)
    response = await client.delete(f"/v1/users/{gone.id}", headers=admin.auth)
    assert response.status_code == 404
    assert response.json()["code"] == 404.1


async def test_non_admin_cannot_delete_a_user(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    me = await make_user()
    other = await make_user()
    response = await client.delete(f"/v1/users/{other.id}", headers=me.auth)
    assert response.json()["code"] == 403.1
    assert (await client.get("/v1/users/current", headers=other.auth)).status_code == 200


async def test_current_user_is_the_caller_without_verbs_by_default(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    me = await make_user("current@example.org")
    response = await client.get("/v1/users/current", headers=me.auth)
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["id"] == me.id
    assert body["email"] == "current@example.org"


async def test_current_user_with_extended_metadata_lists_sitewide_verbs(
    client: httpx.AsyncClient, make_user: MakeUser, admin: Person
) -> None:
    plain = await make_user()
    extended = {"X-Extended-Metadata": "true"}

    admin_body = (await client.get("/v1/users/current", headers={**admin.auth, **extended})).json()
    plain_body = (await client.get("/v1/users/current", headers={**plain.auth, **extended})).json()

    assert {"user.create", "project.create", "audit.read"} <= set(admin_body["verbs"])
    assert plain_body["verbs"] == []
    assert set(plain_body) == USER_FIELDS | {"verbs"}


async def test_current_user_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/current")
    assert response.status_code == 401
    assert response.json()["code"] == 401.1


async def test_user_changes_own_password_with_the_old_one(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    me = await make_user("pw@example.org")
    new = "a completely new passphrase"
    wrong = await client.put(
        f"/v1/users/{me.id}/password", json={"old": "not the password", "new": new}, headers=me.auth
    )
    assert wrong.status_code == 401
    right = await client.put(
        f"/v1/users/{me.id}/password", json={"old": PASSWORD, "new": new}, headers=me.auth
    )
    assert right.json() == {"success": True}
    old_login = await client.post("/v1/sessions", json={"email": "pw@example.org", "password": PASSWORD})
    assert old_login.status_code == 401
    new_login = await client.post("/v1/sessions", json={"email": "pw@example.org", "password": new})
    assert new_login.status_code == 200
