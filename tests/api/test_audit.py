"""The audit log: every write leaves a row naming actor, action and target; only admins read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from tests.conftest import PASSWORD, MakeUser, Person

from odk_mcp.bootstrap import Container


async def audit_rows(container: Container) -> list[dict[str, Any]]:
    async with container.db.read() as conn:
        result = await conn.execute(
            text(
                "SELECT actor_id, action, target_type, target_id, project_id, details"
                " FROM events.audits ORDER BY id"
            )
        )
        return [dict(row) for row in result.mappings()]


async def last_audit(container: Container) -> dict[str, Any]:
    rows = await audit_rows(container)
    assert rows, "no audit row was written"
    return rows[-1]


async def test_every_write_records_actor_action_and_target(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    def expect(action: str, target_type: str, target_id: object, actor_id: int = admin.id) -> dict[str, Any]:
        return {
            "actor_id": actor_id,
            "action": action,
            "target_type": target_type,
            "target_id": str(target_id),
        }

    async def check(response: httpx.Response, wanted: dict[str, Any]) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        row = await last_audit(container)
        assert {k: row[k] for k in wanted} == wanted
        return row

    user = (
        await client.post(
            "/v1/users", json={"email": "u@example.org", "password": PASSWORD}, headers=admin.auth
        )
    ).json()
    row = await check(
        await client.get("/v1/users", headers=admin.auth), expect("user.create", "actor", user["id"])
    )
    assert row["details"]["email"] == "u@example.org"

    login = await client.post("/v1/sessions", json={"email": "u@example.org", "password": PASSWORD})
    await check(login, expect("user.session.create", "actor", user["id"], actor_id=user["id"]))
    user_auth = {"Authorization": f"Bearer {login.json()['token']}"}

    await check(
        await client.patch(f"/v1/users/{user['id']}", json={"displayName": "U"}, headers=admin.auth),
        expect("user.update", "actor", user["id"]),
    )
    await check(
        await client.put(
            f"/v1/users/{user['id']}/password",
            json={"old": PASSWORD, "new": "another good password"},
            headers=user_auth,
        ),
        expect("user.password.change", "actor", user["id"], actor_id=user["id"]),
    )

    project = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()
    row = await check(
        await client.get("/v1/projects", headers=admin.auth),
        expect("project.create", "project", project["id"]),
    )
    assert row["project_id"] == project["id"]
    await check(
        await client.patch(f"/v1/projects/{project['id']}", json={"archived": True}, headers=admin.auth),
        expect("project.update", "project", project["id"]),
    )

    assign = f"/v1/projects/{project['id']}/assignments/viewer/{user['id']}"
    row = await check(
        await client.post(assign, headers=admin.auth), expect("assignment.create", "actor", user["id"])
    )
    assert (row["project_id"], row["details"]["roleId"]) == (project["id"], 4)
    await check(
        await client.delete(assign, headers=admin.auth), expect("assignment.delete", "actor", user["id"])
    )

    app_user = (
        await client.post(
            f"/v1/projects/{project['id']}/app-users", json={"displayName": "T"}, headers=admin.auth
        )
    ).json()
    await check(
        await client.get(f"/v1/projects/{project['id']}/app-users", headers=admin.auth),
        expect("field_key.create", "actor", app_user["id"]),
    )
    await check(
        await client.delete(f"/v1/projects/{project['id']}/app-users/{app_user['id']}", headers=admin.auth),
        expect("field_key.delete", "actor", app_user["id"]),
    )

    await check(
        await client.delete(f"/v1/projects/{project['id']}", headers=admin.auth),
        expect("project.delete", "project", project["id"]),
    )
    await check(
        await client.delete(f"/v1/users/{user['id']}", headers=admin.auth),
        expect("user.delete", "actor", user["id"]),
    )


async def test_audit_details_never_hold_passwords(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    secret = "a secret passphrase nobody knows"
    await client.post("/v1/users", json={"email": "s@example.org", "password": secret}, headers=admin.auth)
    await client.post("/v1/sessions", json={"email": "s@example.org", "password": secret})
    async with container.db.read() as conn:
        dumped = (
            await conn.execute(text("SELECT string_agg(details::text, ' ') FROM events.audits"))
        ).scalar_one()
    assert secret not in dumped


async def test_rejected_writes_record_no_audit_rows(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser, container: Container
) -> None:
    someone = await make_user("someone@example.org")
    project = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()
    before = await audit_rows(container)

    rejected = [
        await client.post("/v1/users", json={"email": "SOMEONE@example.org"}, headers=admin.auth),
        await client.post("/v1/users", json={"email": "x@example.org"}, headers=someone.auth),
        await client.patch(f"/v1/users/{admin.id}", json={"displayName": "x"}, headers=someone.auth),
        await client.put(
            f"/v1/users/{someone.id}/password",
            json={"old": "wrong password", "new": "x" * 12},
            headers=someone.auth,
        ),
        await client.post(
            "/v1/sessions", json={"email": "someone@example.org", "password": "wrong password"}
        ),
        await client.post("/v1/projects", json={"name": ""}, headers=admin.auth),
        await client.patch(f"/v1/projects/{project['id']}", json={"archived": "maybe"}, headers=admin.auth),
        await client.delete(f"/v1/projects/{project['id']}", headers=someone.auth),
        await client.post(f"/v1/projects/{project['id']}/assignments/admin/{someone.id}", headers=admin.auth),
        await client.delete(
            f"/v1/projects/{project['id']}/assignments/viewer/{someone.id}", headers=admin.auth
        ),
        await client.post(f"/v1/assignments/admin/{admin.id}", headers=admin.auth),
        await client.post(
            f"/v1/projects/{project['id']}/app-users", json={"displayName": "x"}, headers=someone.auth
        ),
        await client.delete(f"/v1/users/{admin.id}", headers=someone.auth),
    ]

    assert all(400 <= r.status_code < 500 for r in rejected), [(r.status_code, r.text) for r in rejected]
    assert await audit_rows(container) == before


async def test_audit_log_is_for_administrators_only(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    someone = await make_user()
    denied = await client.get("/v1/audits", headers=someone.auth)
    anonymous = await client.get("/v1/audits")
    assert denied.status_code == 403
    assert denied.json()["code"] == 403.1
    assert anonymous.status_code == 401


async def test_audit_log_is_newest_first_in_central_shape(client: httpx.AsyncClient, admin: Person) -> None:
    project = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()
    await client.patch(f"/v1/projects/{project['id']}", json={"name": "Q"}, headers=admin.auth)

    entries = (await client.get("/v1/audits", headers=admin.auth)).json()

    assert [e["action"] for e in entries[:2]] == ["project.update", "project.create"]
    newest = entries[0]
    assert set(newest) == {
        "id",
        "actorId",
        "action",
        "projectId",
        "acteeType",
        "acteeId",
        "details",
        "loggedAt",
    }
    assert newest["actorId"] == admin.id
    assert newest["acteeId"] == str(project["id"])
    assert newest["details"] == {"name": "Q"}
    assert datetime.fromisoformat(newest["loggedAt"]).tzinfo is not None


async def test_audit_log_filters_by_exact_action_and_by_category(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    user = await make_user()
    await client.patch(f"/v1/users/{user.id}", json={"displayName": "x"}, headers=admin.auth)
    await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)

    async def actions(action: str) -> list[str]:
        response = await client.get("/v1/audits", params={"action": action}, headers=admin.auth)
        assert response.status_code == 200
        return [e["action"] for e in response.json()]

    assert await actions("user.update") == ["user.update"]
    assert set(await actions("user")) == {"user.create", "user.session.create", "user.update"}
    assert await actions("project") == ["project.create"]
    assert await actions("project.update") == []
    assert await actions("use") == []  # a category is a whole word, not any prefix
    assert await actions("user%") == []  # no LIKE wildcards leak through


async def test_audit_log_filters_by_start_and_end(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    await client.post("/v1/projects", json={"name": "Old"}, headers=admin.auth)
    async with container.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE events.audits SET logged_at = '2020-06-15T12:00:00Z' WHERE action = 'project.create'"
            )
        )
    await client.post("/v1/projects", json={"name": "New"}, headers=admin.auth)

    async def details(**params: str) -> list[str]:
        response = await client.get(
            "/v1/audits", params={"action": "project.create", **params}, headers=admin.auth
        )
        assert response.status_code == 200, response.text
        return [e["loggedAt"][:4] for e in response.json()]

    now = datetime.now(UTC)
    assert await details() == [str(now.year), "2020"]
    assert await details(start="2021-01-01T00:00:00Z") == [str(now.year)]
    assert await details(end="2021-01-01T00:00:00Z") == ["2020"]
    assert await details(start="2020-06-15", end="2020-06-16") == ["2020"]
    assert await details(start=(now + timedelta(days=1)).isoformat()) == []


async def test_audit_log_pages_with_limit_and_offset(client: httpx.AsyncClient, admin: Person) -> None:
    for name in ("A", "B", "C"):
        await client.post("/v1/projects", json={"name": name}, headers=admin.auth)

    first = (
        await client.get("/v1/audits", params={"action": "project", "limit": 2}, headers=admin.auth)
    ).json()
    rest = (
        await client.get(
            "/v1/audits", params={"action": "project", "limit": 2, "offset": 2}, headers=admin.auth
        )
    ).json()

    assert len(first) == 2
    assert len(rest) == 1
    assert {e["id"] for e in first}.isdisjoint({e["id"] for e in rest})


async def test_audit_log_rejects_malformed_filters(client: httpx.AsyncClient, admin: Person) -> None:
    for params in (
        {"start": "yesterday"},
        {"end": "2020-13-45"},
        {"limit": "0"},
        {"limit": "many"},
        {"offset": "-1"},
    ):
        response = await client.get("/v1/audits", params=params, headers=admin.auth)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["code"] == 400.11
