"""`/v1/projects`: create, read, update, archive and soft-delete, in the shape pyODK parses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from tests.conftest import MakeUser, Person

PROJECT_FIELDS = {"id", "name", "createdAt", "description", "archived", "keyId", "updatedAt", "deletedAt"}


async def create_project(client: httpx.AsyncClient, admin: Person, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/projects", json={"name": "Household survey", **body}, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_admin_creates_a_project_in_pyodk_shape(client: httpx.AsyncClient, admin: Person) -> None:
    body = await create_project(client, admin, name="Malaria 2026", description="Round one")

    assert set(body) == PROJECT_FIELDS
    assert isinstance(body["id"], int)
    assert body["name"] == "Malaria 2026"
    assert body["description"] == "Round one"
    assert body["archived"] is False
    assert body["keyId"] is None
    assert datetime.fromisoformat(body["createdAt"]).tzinfo is not None
    assert body["updatedAt"] is None
    assert body["deletedAt"] is None


async def test_project_is_read_back_and_listed(client: httpx.AsyncClient, admin: Person) -> None:
    created = await create_project(client, admin)
    fetched = await client.get(f"/v1/projects/{created['id']}", headers=admin.auth)
    assert fetched.json() == created
    listed = (await client.get("/v1/projects", headers=admin.auth)).json()
    assert listed == [created]


async def test_project_listing_shows_only_projects_the_caller_can_read(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    mine = await create_project(client, admin, name="Mine")
    await create_project(client, admin, name="Not mine")
    viewer = await make_user()
    assigned = await client.post(
        f"/v1/projects/{mine['id']}/assignments/viewer/{viewer.id}", headers=admin.auth
    )
    assert assigned.status_code == 200

    listed = (await client.get("/v1/projects", headers=viewer.auth)).json()

    assert [p["name"] for p in listed] == ["Mine"]


async def test_project_patch_changes_name_description_and_archived(
    client: httpx.AsyncClient, admin: Person
) -> None:
    created = await create_project(client, admin, description="old")

    response = await client.patch(
        f"/v1/projects/{created['id']}",
        json={"name": "Renamed", "description": "new", "archived": True},
        headers=admin.auth,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["description"], body["archived"]) == ("Renamed", "new", True)
    assert datetime.fromisoformat(body["updatedAt"]) >= datetime.fromisoformat(body["createdAt"])
    assert (await client.get(f"/v1/projects/{created['id']}", headers=admin.auth)).json() == body


async def test_project_patch_leaves_absent_fields_alone(client: httpx.AsyncClient, admin: Person) -> None:
    created = await create_project(client, admin, name="Keep", description="keep too")
    response = await client.patch(
        f"/v1/projects/{created['id']}", json={"archived": True}, headers=admin.auth
    )
    body = response.json()
    assert (body["name"], body["description"], body["archived"]) == ("Keep", "keep too", True)
    unarchived = await client.patch(
        f"/v1/projects/{created['id']}", json={"archived": False}, headers=admin.auth
    )
    assert unarchived.json()["archived"] is False


async def test_project_name_cannot_be_blank(client: httpx.AsyncClient, admin: Person) -> None:
    created = await create_project(client, admin, name="Named")
    blank = await client.post("/v1/projects", json={"name": "   "}, headers=admin.auth)
    assert blank.status_code == 400
    assert blank.json()["code"] == 400.8
    patched = await client.patch(f"/v1/projects/{created['id']}", json={"name": ""}, headers=admin.auth)
    assert patched.json()["code"] == 400.8
    assert (await client.get(f"/v1/projects/{created['id']}", headers=admin.auth)).json()["name"] == "Named"


async def test_deleted_project_is_404_everywhere(client: httpx.AsyncClient, admin: Person) -> None:
    created = await create_project(client, admin)
    path = f"/v1/projects/{created['id']}"

    deleted = await client.delete(path, headers=admin.auth)

    assert deleted.json() == {"success": True}
    for response in (
        await client.get(path, headers=admin.auth),
        await client.patch(path, json={"name": "x"}, headers=admin.auth),
        await client.delete(path, headers=admin.auth),
        await client.get(f"{path}/app-users", headers=admin.auth),
        await client.get(f"{path}/assignments", headers=admin.auth),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == 404.1
    assert (await client.get("/v1/projects", headers=admin.auth)).json() == []


async def test_non_admin_cannot_create_projects(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    someone = await make_user()
    response = await client.post("/v1/projects", json={"name": "Nope"}, headers=someone.auth)
    assert response.status_code == 403
    assert response.json()["code"] == 403.1


async def test_project_viewer_reads_but_cannot_change_the_project(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    created = await create_project(client, admin, name="Watched")
    viewer = await make_user()
    await client.post(f"/v1/projects/{created['id']}/assignments/viewer/{viewer.id}", headers=admin.auth)
    path = f"/v1/projects/{created['id']}"

    assert (await client.get(path, headers=viewer.auth)).status_code == 200
    patched = await client.patch(path, json={"name": "Mine now"}, headers=viewer.auth)
    deleted = await client.delete(path, headers=viewer.auth)

    assert patched.json()["code"] == 403.1
    assert deleted.json()["code"] == 403.1
    assert (await client.get(path, headers=admin.auth)).json()["name"] == "Watched"


async def test_project_manager_may_update_their_project(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    created = await create_project(client, admin)
    manager = await make_user()
    await client.post(f"/v1/projects/{created['id']}/assignments/manager/{manager.id}", headers=admin.auth)
    response = await client.patch(
        f"/v1/projects/{created['id']}", json={"description": "by the manager"}, headers=manager.auth
    )
    assert response.status_code == 200
    assert response.json()["description"] == "by the manager"


async def test_anonymous_cannot_list_projects(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/projects")
    assert response.status_code == 401
    assert response.json()["code"] == 401.1
