"""Role assignments: sitewide, per project and per form, with ODK Central's rules and codes."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.services.users import CredentialKind, Credentials


async def create_project(client: httpx.AsyncClient, admin: Person, name: str = "Survey") -> int:
    response = await client.post("/v1/projects", json={"name": name}, headers=admin.auth)
    assert response.status_code == 200, response.text
    project_id: int = response.json()["id"]
    return project_id


async def create_app_user(client: httpx.AsyncClient, admin: Person, project_id: int) -> dict[str, Any]:
    response = await client.post(
        f"/v1/projects/{project_id}/app-users", json={"displayName": "Tablet 1"}, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def insert_form(container: Container, project_id: int, xml_form_id: str) -> None:
    """There is no form upload yet: put a row in the forms catalogue directly."""
    async with container.db.transaction() as conn:
        await conn.execute(
            text("INSERT INTO forms.forms (project_id, xml_form_id) VALUES (:p, :f)"),
            {"p": project_id, "f": xml_form_id},
        )


# -- sitewide --------------------------------------------------------------------------


async def test_sitewide_admin_assignment_makes_a_user_administrator(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    user = await make_user()
    assert (await client.get("/v1/users", headers=user.auth)).status_code == 403

    response = await client.post(f"/v1/assignments/admin/{user.id}", headers=admin.auth)

    assert response.json() == {"success": True}
    assert (await client.get("/v1/users", headers=user.auth)).status_code == 200
    listed = (await client.get("/v1/assignments", headers=admin.auth)).json()
    assert {"actorId": user.id, "roleId": 1} in listed
    assert {"actorId": admin.id, "roleId": 1} in listed


async def test_sitewide_role_listing_by_id_or_system_name_returns_actors(
    client: httpx.AsyncClient, admin: Person
) -> None:
    by_name = (await client.get("/v1/assignments/admin", headers=admin.auth)).json()
    by_id = (await client.get("/v1/assignments/1", headers=admin.auth)).json()
    assert by_name == by_id
    assert [a["email"] for a in by_name] == ["admin@example.org"]
    assert by_name[0]["type"] == "user"


async def test_sitewide_assignments_with_extended_metadata_carry_actor_objects(
    client: httpx.AsyncClient, admin: Person
) -> None:
    response = await client.get("/v1/assignments", headers={**admin.auth, "X-Extended-Metadata": "true"})
    assert response.json() == [
        {
            "roleId": 1,
            "actor": (await client.get(f"/v1/users/{admin.id}", headers=admin.auth)).json(),
        }
    ]


async def test_sitewide_unassign_removes_the_rights(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    user = await make_user()
    await client.post(f"/v1/assignments/admin/{user.id}", headers=admin.auth)
    response = await client.delete(f"/v1/assignments/1/{user.id}", headers=admin.auth)
    assert response.json() == {"success": True}
    assert (await client.get("/v1/users", headers=user.auth)).status_code == 403


async def test_duplicate_assignment_is_409(client: httpx.AsyncClient, admin: Person) -> None:
    response = await client.post(f"/v1/assignments/admin/{admin.id}", headers=admin.auth)
    assert response.status_code == 409
    assert response.json()["code"] == 409.3


async def test_unassigning_what_is_not_assigned_is_404(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await client.delete(f"/v1/assignments/admin/{user.id}", headers=admin.auth)
    assert response.status_code == 404
    assert response.json()["code"] == 404.1


async def test_project_roles_cannot_be_assigned_sitewide(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    user = await make_user()
    for role in ("manager", "viewer", "formfill", "app-user"):
        response = await client.post(f"/v1/assignments/{role}/{user.id}", headers=admin.auth)
        assert response.status_code == 400, role
        assert response.json()["code"] == 400.8
    assert (await client.get("/v1/assignments", headers=admin.auth)).json() == [
        {"actorId": admin.id, "roleId": 1}
    ]


async def test_unknown_role_is_404(client: httpx.AsyncClient, admin: Person) -> None:
    for path in ("/v1/assignments/overlord", "/v1/assignments/99", f"/v1/assignments/overlord/{admin.id}"):
        response = await client.get(path, headers=admin.auth)
        if path.count("/") == 4:
            response = await client.post(path, headers=admin.auth)
        assert response.status_code == 404, path
        assert response.json()["code"] == 404.1


async def test_assigning_an_unknown_actor_is_404(client: httpx.AsyncClient, admin: Person) -> None:
    response = await client.post("/v1/assignments/admin/999999", headers=admin.auth)
    assert response.status_code == 404
    assert response.json()["code"] == 404.1


async def test_non_admin_cannot_see_or_change_sitewide_assignments(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    assert (await client.get("/v1/assignments", headers=user.auth)).json()["code"] == 403.1
    self_promotion = await client.post(f"/v1/assignments/admin/{user.id}", headers=user.auth)
    assert self_promotion.json()["code"] == 403.1


# -- per project -----------------------------------------------------------------------


async def test_project_assignment_by_system_name_and_by_id(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    manager = await make_user()
    viewer = await make_user()

    assert (
        await client.post(f"/v1/projects/{project}/assignments/manager/{manager.id}", headers=admin.auth)
    ).status_code == 200
    assert (
        await client.post(f"/v1/projects/{project}/assignments/4/{viewer.id}", headers=admin.auth)
    ).status_code == 200

    listed = (await client.get(f"/v1/projects/{project}/assignments", headers=admin.auth)).json()
    assert listed == [{"actorId": manager.id, "roleId": 3}, {"actorId": viewer.id, "roleId": 4}]
    viewers = (await client.get(f"/v1/projects/{project}/assignments/viewer", headers=admin.auth)).json()
    assert [v["id"] for v in viewers] == [viewer.id]
    assert (await client.get(f"/v1/projects/{project}", headers=viewer.auth)).status_code == 200


async def test_project_assignments_with_extended_metadata_carry_actor_objects(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    manager = await make_user("manager@example.org")
    await client.post(f"/v1/projects/{project}/assignments/manager/{manager.id}", headers=admin.auth)

    response = await client.get(
        f"/v1/projects/{project}/assignments", headers={**admin.auth, "X-Extended-Metadata": "true"}
    )

    [entry] = response.json()
    assert entry["roleId"] == 3
    assert entry["actor"]["id"] == manager.id
    assert entry["actor"]["email"] == "manager@example.org"
    assert entry["actor"]["type"] == "user"


async def test_project_manager_manages_assignments_of_their_project_only(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    mine = await create_project(client, admin, "Mine")
    theirs = await create_project(client, admin, "Theirs")
    manager = await make_user()
    helper = await make_user()
    await client.post(f"/v1/projects/{mine}/assignments/manager/{manager.id}", headers=admin.auth)

    ok = await client.post(f"/v1/projects/{mine}/assignments/viewer/{helper.id}", headers=manager.auth)
    denied = await client.post(f"/v1/projects/{theirs}/assignments/viewer/{helper.id}", headers=manager.auth)

    assert ok.status_code == 200
    assert denied.json()["code"] == 403.1


async def test_project_unassign_and_repeat_unassign(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    viewer = await make_user()
    path = f"/v1/projects/{project}/assignments/viewer/{viewer.id}"
    await client.post(path, headers=admin.auth)

    first = await client.delete(path, headers=admin.auth)
    second = await client.delete(path, headers=admin.auth)

    assert first.json() == {"success": True}
    assert second.status_code == 404
    assert second.json()["code"] == 404.1
    assert (await client.get(f"/v1/projects/{project}", headers=viewer.auth)).status_code == 403


async def test_duplicate_project_assignment_is_409(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    viewer = await make_user()
    await client.post(f"/v1/projects/{project}/assignments/viewer/{viewer.id}", headers=admin.auth)
    response = await client.post(f"/v1/projects/{project}/assignments/4/{viewer.id}", headers=admin.auth)
    assert response.status_code == 409
    assert response.json()["code"] == 409.3


async def test_admin_and_app_user_roles_cannot_be_assigned_on_a_project(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    user = await make_user()
    for role in ("admin", "app-user", "pub-link"):
        response = await client.post(
            f"/v1/projects/{project}/assignments/{role}/{user.id}", headers=admin.auth
        )
        assert response.status_code == 400, role
        assert response.json()["code"] == 400.8
    assert (await client.get(f"/v1/projects/{project}/assignments", headers=admin.auth)).json() == []


async def test_app_user_cannot_take_a_web_user_role_on_its_project(
    client: httpx.AsyncClient, admin: Person
) -> None:
    project = await create_project(client, admin)
    app_user = await create_app_user(client, admin, project)
    response = await client.post(
        f"/v1/projects/{project}/assignments/manager/{app_user['id']}", headers=admin.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == 400.8


async def test_project_assignments_of_an_unknown_project_are_404(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    user = await make_user()
    for method, path in (
        ("GET", "/v1/projects/424242/assignments"),
        ("GET", "/v1/projects/424242/assignments/viewer"),
        ("POST", f"/v1/projects/424242/assignments/viewer/{user.id}"),
        ("DELETE", f"/v1/projects/424242/assignments/viewer/{user.id}"),
    ):
        response = await client.request(method, path, headers=admin.auth)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == 404.1


async def test_unknown_role_on_a_project_is_404(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    user = await make_user()
    response = await client.post(f"/v1/projects/{project}/assignments/boss/{user.id}", headers=admin.auth)
    assert response.status_code == 404
    assert response.json()["code"] == 404.1


async def test_assignments_of_a_deleted_user_vanish(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    viewer = await make_user()
    await client.post(f"/v1/projects/{project}/assignments/viewer/{viewer.id}", headers=admin.auth)
    await client.delete(f"/v1/users/{viewer.id}", headers=admin.auth)
    assert (await client.get(f"/v1/projects/{project}/assignments", headers=admin.auth)).json() == []


# -- per form ---------------------------------------------------------------------------


async def test_app_user_assigned_to_a_form_may_read_that_form_only(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    await insert_form(container, project, "household")
    await insert_form(container, project, "other")
    app_user = await create_app_user(client, admin, project)

    response = await client.post(
        f"/v1/projects/{project}/forms/household/assignments/2/{app_user['id']}", headers=admin.auth
    )

    assert response.json() == {"success": True}
    listed = (
        await client.get(f"/v1/projects/{project}/forms/household/assignments", headers=admin.auth)
    ).json()
    assert listed == [{"actorId": app_user["id"], "roleId": 2}]
    actor = await container.users.authenticator.authenticate(
        Credentials(CredentialKind.KEY, token=app_user["token"])
    )
    # App users reach forms while they are open (open_form.*), never closed ones (form.*).
    policy = container.users.policy
    assert policy.can(actor, "open_form.read", project, "household")
    assert policy.can(actor, "submission.create", project, "household")
    assert not policy.can(actor, "open_form.read", project, "other")
    assert not policy.can(actor, "form.read", project, "household")
    assert not policy.can(actor, "submission.read", project, "household")


async def test_form_assignment_by_role_name_lists_the_app_user(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    await insert_form(container, project, "household")
    app_user = await create_app_user(client, admin, project)
    await client.post(
        f"/v1/projects/{project}/forms/household/assignments/app-user/{app_user['id']}", headers=admin.auth
    )
    actors = (
        await client.get(f"/v1/projects/{project}/forms/household/assignments/app-user", headers=admin.auth)
    ).json()
    assert [(a["id"], a["type"], a["displayName"]) for a in actors] == [
        (app_user["id"], "field_key", "Tablet 1")
    ]
    assert actors[0]["token"] is None


async def test_app_user_of_another_project_cannot_be_assigned_to_a_form(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin, "Here")
    elsewhere = await create_project(client, admin, "Elsewhere")
    await insert_form(container, project, "household")
    stranger = await create_app_user(client, admin, elsewhere)

    response = await client.post(
        f"/v1/projects/{project}/forms/household/assignments/2/{stranger['id']}", headers=admin.auth
    )

    assert response.status_code == 400
    assert response.json()["code"] == 400.8
    assert (
        await client.get(f"/v1/projects/{project}/forms/household/assignments", headers=admin.auth)
    ).json() == []


async def test_app_user_may_hold_only_the_app_user_role_on_a_form(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    await insert_form(container, project, "household")
    app_user = await create_app_user(client, admin, project)
    response = await client.post(
        f"/v1/projects/{project}/forms/household/assignments/pub-link/{app_user['id']}", headers=admin.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == 400.8


async def test_web_user_cannot_take_the_app_user_role(
    client: httpx.AsyncClient, admin: Person, container: Container, make_user: MakeUser
) -> None:
    project = await create_project(client, admin)
    await insert_form(container, project, "household")
    user = await make_user()
    response = await client.post(
        f"/v1/projects/{project}/forms/household/assignments/2/{user.id}", headers=admin.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == 400.8


async def test_form_assignment_on_a_missing_form_is_404(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    await insert_form(container, project, "household")
    app_user = await create_app_user(client, admin, project)
    for path in (
        f"/v1/projects/{project}/forms/nope/assignments/2/{app_user['id']}",
        f"/v1/projects/{project + 1000}/forms/household/assignments/2/{app_user['id']}",
    ):
        response = await client.post(path, headers=admin.auth)
        assert response.status_code == 404, path
        assert response.json()["code"] == 404.1
    listing = await client.get(f"/v1/projects/{project}/forms/nope/assignments", headers=admin.auth)
    assert listing.json()["code"] == 404.1


async def test_form_assignment_on_a_deleted_form_is_404(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    await insert_form(container, project, "household")
    app_user = await create_app_user(client, admin, project)
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE forms.forms SET deleted_at = now() WHERE xml_form_id = 'household'"))
    response = await client.post(
        f"/v1/projects/{project}/forms/household/assignments/2/{app_user['id']}", headers=admin.auth
    )
    assert response.json()["code"] == 404.1


async def test_form_unassign_revokes_the_app_users_grant(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    await insert_form(container, project, "household")
    app_user = await create_app_user(client, admin, project)
    path = f"/v1/projects/{project}/forms/household/assignments/2/{app_user['id']}"
    await client.post(path, headers=admin.auth)

    assert (await client.delete(path, headers=admin.auth)).json() == {"success": True}

    actor = await container.users.authenticator.authenticate(
        Credentials(CredentialKind.KEY, token=app_user["token"])
    )
    assert not container.users.policy.can(actor, "open_form.read", project, "household")
    assert (await client.delete(path, headers=admin.auth)).json()["code"] == 404.1
