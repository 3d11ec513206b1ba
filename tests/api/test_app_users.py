"""`/v1/projects/{p}/app-users`: project-bound device identities authenticated by a token."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container

APP_USER_FIELDS = {"id", "type", "displayName", "projectId", "token", "createdAt", "updatedAt", "deletedAt"}


async def create_project(client: httpx.AsyncClient, admin: Person, name: str = "Survey") -> int:
    response = await client.post("/v1/projects", json={"name": name}, headers=admin.auth)
    assert response.status_code == 200, response.text
    project_id: int = response.json()["id"]
    return project_id


async def create_app_user(
    client: httpx.AsyncClient, who: Person, project_id: int, name: str = "Tablet 1"
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/projects/{project_id}/app-users", json={"displayName": name}, headers=who.auth
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_created_app_user_carries_a_long_token_shown_again_in_the_listing(
    client: httpx.AsyncClient, admin: Person
) -> None:
    project = await create_project(client, admin)

    created = await create_app_user(client, admin, project, "Collect phone")

    assert set(created) == APP_USER_FIELDS
    assert created["type"] == "field_key"
    assert created["displayName"] == "Collect phone"
    assert created["projectId"] == project
    assert isinstance(created["token"], str)
    assert len(created["token"]) >= 64
    listed = (await client.get(f"/v1/projects/{project}/app-users", headers=admin.auth)).json()
    assert listed == [created]  # as in ODK Central, an active app user's token is listed again


async def test_app_user_token_is_stored_only_as_a_hash(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    created = await create_app_user(client, admin, project)
    async with container.db.read() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM users.sessions"))).scalars().all()
    assert created["token"] not in stored


async def test_app_users_are_listed_newest_first(client: httpx.AsyncClient, admin: Person) -> None:
    project = await create_project(client, admin)
    first = await create_app_user(client, admin, project, "First")
    second = await create_app_user(client, admin, project, "Second")
    listed = (await client.get(f"/v1/projects/{project}/app-users", headers=admin.auth)).json()
    assert [a["id"] for a in listed] == [second["id"], first["id"]]


async def test_app_user_token_authenticates_key_paths(client: httpx.AsyncClient, admin: Person) -> None:
    project = await create_project(client, admin)
    created = await create_app_user(client, admin, project)
    response = await client.get(f"/v1/key/{created['token']}/projects")
    assert response.status_code == 200
    assert response.json() == []  # it holds no project role, only form grants


async def test_deleted_app_user_disappears_and_its_token_stops_working(
    client: httpx.AsyncClient, admin: Person
) -> None:
    project = await create_project(client, admin)
    created = await create_app_user(client, admin, project)
    key_path = f"/v1/key/{created['token']}/projects"
    assert (await client.get(key_path)).status_code == 200

    deleted = await client.delete(f"/v1/projects/{project}/app-users/{created['id']}", headers=admin.auth)

    assert deleted.json() == {"success": True}
    refused = await client.get(key_path)
    assert refused.status_code == 403
    assert refused.json()["code"] == 403.1
    assert (await client.get(f"/v1/projects/{project}/app-users", headers=admin.auth)).json() == []
    again = await client.delete(f"/v1/projects/{project}/app-users/{created['id']}", headers=admin.auth)
    assert again.json()["code"] == 404.1


async def test_unknown_key_is_403_not_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/key/" + "x" * 64 + "/projects")
    assert response.status_code == 403
    assert response.json()["code"] == 403.1


async def test_app_user_of_one_project_is_invisible_from_another(
    client: httpx.AsyncClient, admin: Person
) -> None:
    home = await create_project(client, admin, "Home")
    other = await create_project(client, admin, "Other")
    created = await create_app_user(client, admin, home)

    listed = (await client.get(f"/v1/projects/{other}/app-users", headers=admin.auth)).json()
    deleted = await client.delete(f"/v1/projects/{other}/app-users/{created['id']}", headers=admin.auth)

    assert listed == []
    assert deleted.status_code == 404
    assert deleted.json()["code"] == 404.1
    assert (await client.get(f"/v1/key/{created['token']}/projects")).status_code == 200


async def test_web_user_cannot_be_deleted_through_the_app_user_route(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    user = await make_user()
    response = await client.delete(f"/v1/projects/{project}/app-users/{user.id}", headers=admin.auth)
    assert response.json()["code"] == 404.1
    assert (await client.get("/v1/users/current", headers=user.auth)).status_code == 200


async def test_app_users_of_an_unknown_project_are_404(client: httpx.AsyncClient, admin: Person) -> None:
    listed = await client.get("/v1/projects/777/app-users", headers=admin.auth)
    created = await client.post("/v1/projects/777/app-users", json={"displayName": "x"}, headers=admin.auth)
    assert listed.json()["code"] == 404.1
    assert created.json()["code"] == 404.1


async def test_project_manager_manages_app_users_viewer_cannot(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    manager = await make_user()
    viewer = await make_user()
    await client.post(f"/v1/projects/{project}/assignments/manager/{manager.id}", headers=admin.auth)
    await client.post(f"/v1/projects/{project}/assignments/viewer/{viewer.id}", headers=admin.auth)

    created = await create_app_user(client, manager, project)
    refused = await client.post(
        f"/v1/projects/{project}/app-users", json={"displayName": "Nope"}, headers=viewer.auth
    )

    assert created["projectId"] == project
    assert refused.json()["code"] == 403.1
    assert (await client.get(f"/v1/projects/{project}/app-users", headers=viewer.auth)).json()[
        "code"
    ] == 403.1


async def test_app_user_has_no_user_record(client: httpx.AsyncClient, admin: Person) -> None:
    project = await create_project(client, admin)
    created = await create_app_user(client, admin, project)
    by_key = await client.get(f"/v1/key/{created['token']}/users/current")
    by_id = await client.get(f"/v1/users/{created['id']}", headers=admin.auth)
    assert by_key.json()["code"] == 404.1
    assert by_id.json()["code"] == 404.1


async def test_app_user_key_cannot_administer(client: httpx.AsyncClient, admin: Person) -> None:
    project = await create_project(client, admin)
    created = await create_app_user(client, admin, project)
    key = f"/v1/key/{created['token']}"
    made = await client.post(f"{key}/projects/{project}/app-users", json={"displayName": "Clone"})
    assert made.status_code == 403
    assert (await client.get(f"{key}/users")).status_code == 403
