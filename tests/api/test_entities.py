"""Entity lists and entities over the REST API on real PostgreSQL: creation (one and bulk),
reads, versioned updates with baseVersion, delete/restore, history, audit, and refusals of
bad input that leave nothing behind."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.users import Scope


@pytest.fixture
async def project(container: Container) -> int:
    return (await container.forms.projects.create(SYSTEM, "Villages", None)).id


async def make_list(client: httpx.AsyncClient, admin: Person, project: int, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "trees")
    response = await client.post(f"/v1/projects/{project}/datasets", json=body, headers=admin.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def counts(container: Container) -> tuple[int, int, int]:
    async with container.db.read() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM entities.datasets),"
                    " (SELECT count(*) FROM entities.entities), (SELECT count(*) FROM entities.versions)"
                )
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def test_a_list_is_created_with_properties_and_read_back(
    client: httpx.AsyncClient, admin: Person, project: int
) -> None:
    created = await make_list(
        client, admin, project, properties=["species", "height-m"], approvalRequired=True
    )
    assert created["name"] == "trees" and created["approvalRequired"] is True
    assert [p["name"] for p in created["properties"]] == ["species", "height-m"]
    assert created["properties"][1]["odataName"] == "height_m"
    listed = (await client.get(f"/v1/projects/{project}/datasets", headers=admin.auth)).json()
    assert [d["name"] for d in listed] == ["trees"] and listed[0]["projectId"] == project
    patched = await client.patch(
        f"/v1/projects/{project}/datasets/trees", json={"approvalRequired": False}, headers=admin.auth
    )
    assert patched.json()["approvalRequired"] is False
    added = await client.post(
        f"/v1/projects/{project}/datasets/trees/properties", json={"name": "girth"}, headers=admin.auth
    )
    assert added.json() == {"success": True}
    detail = (await client.get(f"/v1/projects/{project}/datasets/trees", headers=admin.auth)).json()
    assert [p["name"] for p in detail["properties"]] == ["species", "height-m", "girth"]
    assert detail["sourceForms"] == [] and detail["linkedForms"] == []


@pytest.mark.parametrize("name", ["", "__x", "a.b", "1abc", "a b", "x/y", 5, None, "é" * 256])
async def test_bad_list_names_are_refused(
    client: httpx.AsyncClient, admin: Person, project: int, container: Container, name: Any
) -> None:
    response = await client.post(f"/v1/projects/{project}/datasets", json={"name": name}, headers=admin.auth)
    assert response.status_code == 400 and response.json()["code"] == 400.8
    assert await counts(container) == (0, 0, 0)


@pytest.mark.parametrize("prop", ["name", "LABEL", "__id", "a:b", "9x", "", "a b", 3])
async def test_bad_property_names_are_refused(
    client: httpx.AsyncClient, admin: Person, project: int, prop: Any
) -> None:
    await make_list(client, admin, project)
    response = await client.post(
        f"/v1/projects/{project}/datasets/trees/properties", json={"name": prop}, headers=admin.auth
    )
    assert response.status_code == 400 and response.json()["code"] == 400.8
    detail = (await client.get(f"/v1/projects/{project}/datasets/trees", headers=admin.auth)).json()
    assert detail["properties"] == []


async def test_names_unique_ignoring_case(client: httpx.AsyncClient, admin: Person, project: int) -> None:
    await make_list(client, admin, project, properties=["Species"])
    again = await client.post(f"/v1/projects/{project}/datasets", json={"name": "TREES"}, headers=admin.auth)
    assert again.status_code == 409 and again.json()["code"] == 409.3
    prop = await client.post(
        f"/v1/projects/{project}/datasets/trees/properties", json={"name": "species"}, headers=admin.auth
    )
    assert prop.status_code == 409 and prop.json()["code"] == 409.3


async def test_entity_lifecycle_versions_diffs_and_audits(
    client: httpx.AsyncClient, admin: Person, project: int
) -> None:
    await make_list(client, admin, project, properties=["species", "height"])
    base = f"/v1/projects/{project}/datasets/trees/entities"
    created = await client.post(
        base,
        json={"label": "Oak 1", "data": {"species": "oak", "height": "12"}},
        headers={**admin.auth, "User-Agent": "field-app/1"},
    )
    assert created.status_code == 200, created.text
    entity = created.json()
    uid = entity["uuid"]
    assert entity["creatorId"] == admin.id and entity["conflict"] is None and entity["deletedAt"] is None
    current = entity["currentVersion"]
    assert current["version"] == 1 and current["baseVersion"] is None and current["label"] == "Oak 1"
    assert current["data"] == {"species": "oak", "height": "12"} and current["userAgent"] == "field-app/1"

    stale = await client.patch(
        f"{base}/{uid}?baseVersion=3", json={"data": {"height": "13"}}, headers=admin.auth
    )
    assert stale.status_code == 409 and stale.json()["code"] == 409.15
    assert stale.json()["details"] == {"current": 1, "provided": 3}
    missing = await client.patch(f"{base}/{uid}", json={"data": {"height": "13"}}, headers=admin.auth)
    assert missing.status_code == 400 and missing.json()["code"] == 400.2
    updated = await client.patch(
        f"{base}/{uid}?baseVersion=1", json={"data": {"height": "13", "label": "Oak one"}}, headers=admin.auth
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["currentVersion"]["version"] == 2
    assert updated.json()["currentVersion"]["data"] == {"species": "oak", "height": "13"}
    assert updated.json()["currentVersion"]["label"] == "Oak one"
    forced = await client.patch(f"{base}/{uid}?force=true", json={"label": "Oak I"}, headers=admin.auth)
    assert forced.json()["currentVersion"]["version"] == 3

    versions = (await client.get(f"{base}/{uid}/versions", headers=admin.auth)).json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["current"] for v in versions] == [False, False, True]
    assert versions[1]["dataReceived"] == {"height": "13", "label": "Oak one"}
    diffs = (await client.get(f"{base}/{uid}/diffs", headers=admin.auth)).json()
    assert diffs == [
        [
            {"old": "Oak 1", "new": "Oak one", "propertyName": "label"},
            {"old": "12", "new": "13", "propertyName": "height"},
        ],
        [{"old": "Oak one", "new": "Oak I", "propertyName": "label"}],
    ]

    assert (await client.delete(f"{base}/{uid}", headers=admin.auth)).json() == {"success": True}
    assert (await client.get(f"{base}/{uid}", headers=admin.auth)).status_code == 404
    assert (await client.get(base, headers=admin.auth)).json() == []
    odata = f"/v1/projects/{project}/datasets/trees.svc/Entities?$count=true&$top=0"
    assert (await client.get(odata, headers=admin.auth)).json()["@odata.count"] == 0
    deleted = (await client.get(f"{base}?deleted=true", headers=admin.auth)).json()
    assert [e["uuid"] for e in deleted] == [uid] and deleted[0]["deletedAt"] is not None
    reuse = await client.post(base, json={"uuid": uid, "label": "x", "data": {}}, headers=admin.auth)
    assert reuse.status_code == 409 and reuse.json()["code"] == 409.19
    assert (await client.post(f"{base}/{uid}/restore", headers=admin.auth)).json() == {"success": True}
    assert (await client.get(f"{base}/{uid}", headers=admin.auth)).json()["currentVersion"]["version"] == 3
    assert (await client.get(odata, headers=admin.auth)).json()["@odata.count"] == 1

    audits = (await client.get(f"{base}/{uid}/audits", headers=admin.auth)).json()
    assert [a["action"] for a in audits] == [
        "entity.restore",
        "entity.delete",
        "entity.update.version",
        "entity.update.version",
        "entity.create",
    ]
    assert all(a["actorId"] == admin.id and a["acteeId"] == uid for a in audits)


async def test_bulk_create_is_all_or_nothing(
    client: httpx.AsyncClient, admin: Person, project: int, container: Container
) -> None:
    await make_list(client, admin, project, properties=["species"])
    base = f"/v1/projects/{project}/datasets/trees/entities"
    rows = [{"label": f"Tree {i}", "data": {"species": "ash"}} for i in range(500)]
    ok = await client.post(
        base, json={"entities": rows, "source": {"name": "trees.csv", "size": 12}}, headers=admin.auth
    )
    assert ok.json() == {"success": True}
    assert await counts(container) == (1, 500, 500)
    listed = (await client.get(base, headers=admin.auth)).json()
    assert len(listed) == 500 and "data" not in listed[0]["currentVersion"]

    taken = listed[0]["uuid"]
    bad_payloads: list[Any] = [
        {"entities": [*rows[:3], {"label": "x", "data": {"unknown": "1"}}], "source": {"name": "f"}},
        {"entities": [{"label": "x", "data": {"species": 5}}], "source": {"name": "f"}},
        {"entities": [{"label": "", "data": {}}], "source": {"name": "f"}},
        {"entities": [], "source": {"name": "f"}},
        {"entities": "nope", "source": {"name": "f"}},
        {"entities": [{"label": "x", "data": {}}]},
        {"entities": [{"label": "x", "data": {}, "uuid": "not-a-uuid"}], "source": {"name": "f"}},
        {"entities": [{"label": "x", "data": {}, "extra": 1}], "source": {"name": "f"}},
    ]
    for payload in bad_payloads:
        response = await client.post(base, json=payload, headers=admin.auth)
        assert response.status_code == 400 and response.json()["code"] == 400.28, (payload, response.text)
    dup = [{"label": "a", "data": {}, "uuid": str(uuid.uuid4())}, {"label": "b", "data": {}, "uuid": taken}]
    clash = await client.post(base, json={"entities": dup, "source": {"name": "f"}}, headers=admin.auth)
    assert clash.status_code == 409 and clash.json()["code"] == 409.3
    assert await counts(container) == (1, 500, 500)


async def test_bad_single_entities_and_unknown_targets(
    client: httpx.AsyncClient, admin: Person, project: int, container: Container
) -> None:
    await make_list(client, admin, project, properties=["species"])
    base = f"/v1/projects/{project}/datasets/trees/entities"
    for body in (
        {"label": "x", "data": {"nope": "1"}},
        {"label": 3, "data": {}},
        {"label": "x", "data": {"species": None}},
        {"label": "x", "data": {"species": "a\x00b"}},
        {"label": "x"},
    ):
        response = await client.post(base, json=body, headers=admin.auth)
        assert response.status_code == 400 and response.json()["code"] == 400.28, body
    not_json = await client.post(
        base, content=b"[1,2", headers={**admin.auth, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["code"] == 400.1
    unknown = await client.post(
        f"/v1/projects/{project}/datasets/nope/entities", json={"label": "x", "data": {}}, headers=admin.auth
    )
    assert unknown.status_code == 404
    for path in (f"{base}/{uuid.uuid4()}", f"{base}/../../x", f"{base}/x'; DROP TABLE x;--"):
        assert (await client.get(path, headers=admin.auth)).status_code == 404
    assert (await client.get("/v1/projects/99999/datasets", headers=admin.auth)).status_code == 404
    assert await counts(container) == (1, 0, 0)


async def test_a_huge_bulk_body_is_refused_before_it_is_read(
    client: httpx.AsyncClient, admin: Person, project: int, container: Container
) -> None:
    await make_list(client, admin, project)
    body = b'{"entities": [' + b'{"label": "x", "data": {}},' * 4_000_000 + b'{"label": "x", "data": {}}]}'
    assert len(body) > 100_000_000
    response = await client.post(
        f"/v1/projects/{project}/datasets/trees/entities",
        content=body,
        headers={**admin.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["code"] == 413.1
    assert await counts(container) == (1, 0, 0)


async def test_conflict_resolution_needs_a_conflict(
    client: httpx.AsyncClient, admin: Person, project: int, container: Container
) -> None:
    await make_list(client, admin, project, properties=["species"])
    base = f"/v1/projects/{project}/datasets/trees/entities"
    uid = (await client.post(base, json={"label": "x", "data": {}}, headers=admin.auth)).json()["uuid"]
    none = await client.patch(f"{base}/{uid}?resolve=true", json={}, headers=admin.auth)
    assert none.status_code == 400 and none.json()["code"] == 400.32
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE entities.entities SET conflict = 'soft' WHERE uuid = :u"), {"u": uid})
    lists = f"/v1/projects/{project}/datasets"
    extended = {**admin.auth, "X-Extended-Metadata": "true"}
    [listed] = (await client.get(lists, headers=extended)).json()
    assert (listed["entities"], listed["conflicts"]) == (1, 1) and listed["lastEntity"] is not None
    assert "conflicts" not in (await client.get(lists, headers=admin.auth)).json()[0]
    resolved = await client.patch(f"{base}/{uid}?resolve=true", json={}, headers=admin.auth)
    assert resolved.status_code == 200 and resolved.json()["conflict"] is None
    assert resolved.json()["currentVersion"]["version"] == 1
    assert (await client.get(lists, headers=extended)).json()[0]["conflicts"] == 0


ROLES = ("manager", "viewer", "formfill")


async def test_permissions_by_role_and_project(
    client: httpx.AsyncClient, admin: Person, project: int, container: Container, make_user: MakeUser
) -> None:
    await make_list(client, admin, project, properties=["species"])
    other = (await container.forms.projects.create(SYSTEM, "Elsewhere", None)).id
    base = f"/v1/projects/{project}/datasets/trees"
    uid = (await client.post(f"{base}/entities", json={"label": "x", "data": {}}, headers=admin.auth)).json()[
        "uuid"
    ]
    people: dict[str, Person] = {}
    for role in ROLES:
        people[role] = await make_user()
        await container.users.assignments.assign(SYSTEM, Scope(project), role, people[role].id)
    stranger = await make_user()
    await container.users.assignments.assign(SYSTEM, Scope(other), "manager", stranger.id)

    reads = [
        ("GET", f"/v1/projects/{project}/datasets", None),
        ("GET", base, None),
        ("GET", f"{base}/entities", None),
        ("GET", f"{base}/entities/{uid}", None),
        ("GET", f"{base}/entities/{uid}/versions", None),
        ("GET", f"{base}.svc/Entities", None),
    ]
    writes = [
        ("POST", f"{base}/entities", {"label": "y", "data": {}}),
        ("PATCH", f"{base}/entities/{uid}?force=true", {"label": "z"}),
        ("POST", f"{base}/properties", {"name": f"p{uuid.uuid4().hex[:6]}"}),
        ("PATCH", base, {"approvalRequired": True}),
        ("POST", f"/v1/projects/{project}/datasets", {"name": f"l{uuid.uuid4().hex[:6]}"}),
        ("DELETE", f"{base}/entities/{uid}", None),
        ("POST", f"{base}/entities/{uid}/restore", None),
    ]
    allowed = {"manager": {"r", "w"}, "viewer": {"r"}, "formfill": set(), "stranger": set()}
    for who, person in [*people.items(), ("stranger", stranger)]:
        for kind, requests in (("r", reads), ("w", writes)):
            for method, path, body in requests:
                response = await client.request(method, path, json=body, headers=person.auth)
                if kind in allowed[who]:
                    assert response.status_code == 200, (who, method, path, response.text)
                else:
                    assert response.status_code == 403, (who, method, path, response.status_code)
    anonymous = await client.get(f"{base}/entities")
    assert anonymous.status_code == 401


async def test_bulk_bodies_above_the_json_limit_are_taken_up_to_their_own(
    client: httpx.AsyncClient, admin: Person, project: int, container: Container
) -> None:
    await make_list(client, admin, project, properties=["species", "district"])
    rows = [
        {"label": f"Tree {i}", "data": {"species": "ash", "district": f"D{i % 90}"}} for i in range(30_000)
    ]
    body = {"entities": rows, "source": {"name": "survey.csv", "size": 1.9}}
    response = await client.post(
        f"/v1/projects/{project}/datasets/trees/entities", json=body, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    assert len(response.request.content) > 1_048_576
    assert await counts(container) == (1, 30_000, 30_000)
    # Other JSON endpoints keep the general limit.
    big = await client.post(
        f"/v1/projects/{project}/datasets/trees/properties",
        json={"name": "x" * 2_000_000},
        headers=admin.auth,
    )
    assert big.status_code == 413 and big.json()["code"] == 413.1
