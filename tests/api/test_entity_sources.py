"""The entities consumers on real PostgreSQL, driven with the real events the forms and
submissions services emitted: delivering an event twice changes nothing the second time, a
broken entity block is recorded, and a declaration naming a list in another case is refused."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from tests.conftest import Person
from tests.integration.test_entities_from_submissions import registration, visit

from odk_mcp.bootstrap import Container
from odk_mcp.events import Event
from odk_mcp.kernel.actor import SYSTEM

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "entities"


async def deliver(container: Container, names: tuple[str, ...], times: int = 1) -> int:
    """Hand every outbox event of those names to the entities consumers, `times` over."""
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, event, payload, created_at FROM events.outbox"
                    " WHERE event = ANY(:n) ORDER BY id"
                ),
                {"n": list(names)},
            )
        ).all()
    consumers = {c.name: c for c in container.entities.consumers()}
    for _ in range(times):
        for row in rows:
            event = Event(row.id, row.event, row.payload, row.created_at)
            for consumer in consumers.values():
                if event.name in consumer.events:
                    async with container.db.transaction() as conn:
                        await consumer.handle(conn, event)
    return len(rows)


async def publish(client: httpx.AsyncClient, admin: Person, project: int, xml: bytes) -> None:
    response = await client.post(
        f"/v1/projects/{project}/forms?publish=true",
        content=xml,
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text


async def submit(client: httpx.AsyncClient, admin: Person, project: int, form: str, xml: str) -> None:
    response = await client.post(
        f"/v1/projects/{project}/forms/{form}/submissions",
        content=xml,
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text


async def test_events_delivered_twice_apply_once(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = (await container.forms.projects.create(SYSTEM, "Twice", None)).id
    await publish(client, admin, project, (FIXTURES / "tree_reg.xml").read_bytes())
    await publish(client, admin, project, (FIXTURES / "tree_visit.xml").read_bytes())
    assert await deliver(container, ("form.published",), times=2) == 2
    oak = str(uuid.uuid4())
    await submit(client, admin, project, "tree_reg", registration(oak, "oak", 3))
    await submit(client, admin, project, "tree_visit", visit(oak, 4, base_version=1))
    assert await deliver(container, ("submission.received",), times=3) == 2
    entity = (
        await client.get(f"/v1/projects/{project}/datasets/trees/entities/{oak}", headers=admin.auth)
    ).json()
    assert entity["currentVersion"]["version"] == 2 and entity["currentVersion"]["data"]["height"] == "4"
    odata = f"/v1/projects/{project}/datasets/trees.svc/Entities?$count=true&$top=0"
    assert (await client.get(odata, headers=admin.auth)).json()["@odata.count"] == 1
    async with container.db.read() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM entities.versions),"
                    " (SELECT count(*) FROM entities.form_defs),"
                    " (SELECT count(*) FROM entities.submission_outcomes)"
                )
            )
        ).one()
    assert tuple(counts) == (2, 2, 2)


async def test_a_broken_entity_block_is_recorded_and_changes_nothing(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = (await container.forms.projects.create(SYSTEM, "Broken", None)).id
    xml = (
        (FIXTURES / "tree_reg.xml")
        .read_text()
        .replace('entities-version="2024.1.0"', 'entities-version="2031.1.0"')
    )
    await publish(client, admin, project, xml.encode())
    await deliver(container, ("form.published",))
    assert (await client.get(f"/v1/projects/{project}/datasets", headers=admin.auth)).json() == []
    audits = (await client.get("/v1/audits?action=entity.form.error", headers=admin.auth)).json()
    assert audits[0]["details"]["code"] == 400.25 and "2031.1.0" in audits[0]["details"]["reason"]
    await submit(client, admin, project, "tree_reg", registration(str(uuid.uuid4()), "elm", 2))
    await deliver(container, ("submission.received",))
    async with container.db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM entities.entities"))).scalar_one() == 0


async def test_a_declared_list_differing_only_in_case_is_refused(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = (await container.forms.projects.create(SYSTEM, "Case", None)).id
    made = await client.post(f"/v1/projects/{project}/datasets", json={"name": "Trees"}, headers=admin.auth)
    assert made.status_code == 200
    await publish(client, admin, project, (FIXTURES / "tree_reg.xml").read_bytes())
    await deliver(container, ("form.published",))
    lists = (await client.get(f"/v1/projects/{project}/datasets", headers=admin.auth)).json()
    assert [d["name"] for d in lists] == ["Trees"]
    audits = (await client.get("/v1/audits?action=entity.form.error", headers=admin.auth)).json()
    assert "capitalization" in audits[0]["details"]["reason"]
