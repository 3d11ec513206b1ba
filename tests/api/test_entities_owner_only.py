"""Owner-only entity lists (Central's `ownerOnly`): once a manager turns it on, data collectors
and app users receive — as the form attachment CSV, in the manifest hash and in the integrity
check — only the entities they created; managers and viewers keep seeing the whole list."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import httpx
from lxml import etree
from tests.api.test_entity_sources import deliver, publish
from tests.conftest import MakeUser, Person
from tests.integration.test_entities_from_submissions import registration

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.users import Scope

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "entities"
MANIFEST = "{http://openrosa.org/xforms/xformsManifest}"


def csv_names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["name", "label", "__version"]
    return sorted(row[0] for row in rows[1:])


async def test_owner_only_lists_give_collectors_their_own_entities(
    client: httpx.AsyncClient, admin: Person, container: Container, make_user: MakeUser
) -> None:
    project = (await container.forms.projects.create(SYSTEM, "Owners", None)).id
    await publish(client, admin, project, (FIXTURES / "tree_reg.xml").read_bytes())
    await publish(client, admin, project, (FIXTURES / "tree_visit.xml").read_bytes())
    await deliver(container, ("form.published",))
    collector = await make_user()
    await container.users.assignments.assign(SYSTEM, Scope(project), "formfill", collector.id)
    viewer = await make_user()
    await container.users.assignments.assign(SYSTEM, Scope(project), "viewer", viewer.id)
    app_user = await container.users.app_users.create(SYSTEM, project, "Tablet")
    assert app_user.token is not None
    for form in ("tree_reg", "tree_visit"):
        await container.users.assignments.assign(SYSTEM, Scope(project, form), "app-user", app_user.id)
    key = f"/v1/key/{app_user.token}"
    base = f"/v1/projects/{project}"

    mine, theirs, managers = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    sent = await client.post(
        f"{base}/forms/tree_reg/submissions",
        content=registration(mine, "oak", 3),
        headers={**collector.auth, "Content-Type": "application/xml"},
    )
    assert sent.status_code == 200, sent.text
    sent = await client.post(
        f"{key}/projects/{project}/forms/tree_reg/submissions",
        content=registration(theirs, "elm", 4),
        headers={"Content-Type": "application/xml"},
    )
    assert sent.status_code == 200, sent.text
    made = await client.post(
        f"{base}/datasets/trees/entities",
        json={"uuid": managers, "label": "ash 5", "data": {"species": "ash"}},
        headers=admin.auth,
    )
    assert made.status_code == 200, made.text
    await deliver(container, ("submission.received",))

    attachment = f"{base}/forms/tree_visit/attachments/trees.csv"
    everyone = sorted([mine, theirs, managers])
    assert csv_names(await client.get(attachment, headers=collector.auth)) == everyone

    # Only managers change the setting; a non-boolean is refused and changes nothing.
    refused = await client.patch(f"{base}/datasets/trees", json={"ownerOnly": True}, headers=collector.auth)
    assert refused.status_code == 403
    bad = await client.patch(f"{base}/datasets/trees", json={"ownerOnly": "yes"}, headers=admin.auth)
    assert bad.status_code == 400 and bad.json()["code"] == 400.11
    assert (await client.get(f"{base}/datasets/trees", headers=admin.auth)).json()["ownerOnly"] is False

    def manifest_hash(response: httpx.Response) -> str | None:
        media = etree.fromstring(response.content).find(f"{MANIFEST}mediaFile")
        assert media is not None and media.get("type") == "entityList"
        return media.findtext(f"{MANIFEST}hash")

    manifest = f"{base}/forms/tree_visit/manifest"
    openrosa = {"X-OpenRosa-Version": "1.0"}
    before = manifest_hash(await client.get(manifest, headers={**collector.auth, **openrosa}))

    turned = await client.patch(f"{base}/datasets/trees", json={"ownerOnly": True}, headers=admin.auth)
    assert turned.status_code == 200 and turned.json()["ownerOnly"] is True
    audits = (await client.get("/v1/audits?action=dataset.update", headers=admin.auth)).json()
    assert audits[0]["details"] == {"ownerOnly": True}

    # Collectors and app users: their own entities only, with a hash of their own.
    assert csv_names(await client.get(attachment, headers=collector.auth)) == [mine]
    key_attachment = f"{key}/projects/{project}/forms/tree_visit/attachments/trees.csv"
    assert csv_names(await client.get(key_attachment)) == [theirs]
    collector_hash = manifest_hash(await client.get(manifest, headers={**collector.auth, **openrosa}))
    app_hash = manifest_hash(await client.get(f"{key}/projects/{project}/forms/tree_visit/manifest"))
    admin_hash = manifest_hash(await client.get(manifest, headers={**admin.auth, **openrosa}))
    assert len({before, collector_hash, app_hash, admin_hash}) == 4
    integrity = await client.get(f"{base}/datasets/trees/integrity", headers=collector.auth)
    assert [e.get("id") for e in etree.fromstring(integrity.content).iter("entity")] == [mine]

    # Managers and viewers still receive the whole list, through forms and the API alike.
    for person in (admin, viewer):
        assert csv_names(await client.get(attachment, headers=person.auth)) == everyone
        assert csv_names(await client.get(f"{base}/datasets/trees/entities.csv", headers=person.auth)) == (
            everyone
        )
    # Turning it off gives everyone the whole list again.
    off = await client.patch(f"{base}/datasets/trees", json={"ownerOnly": False}, headers=admin.auth)
    assert off.status_code == 200 and off.json()["ownerOnly"] is False
    assert csv_names(await client.get(key_attachment)) == everyone
