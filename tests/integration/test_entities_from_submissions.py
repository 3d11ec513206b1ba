"""Entities from submissions, end to end on the live server (real HTTP, the in-process event
worker): a registration form creates entities; a follow-up form receives the list through its
manifest and CSV download; an update submission changes an entity; two devices updating from
the same old version make a recorded conflict; an approval-required list waits for approval."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from tests.compat.test_pyodk import Central, central

__all__ = ["central"]  # the module-scoped live server fixture, shared with test_pyodk.py

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "entities"
MANIFEST = "{http://openrosa.org/xforms/xformsManifest}"


def wait_for(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    """Poll until `check()` returns something truthy (the event worker runs asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def registration(entity_id: str, species: str, height: int) -> str:
    return (
        f'<data id="tree_reg" version="1"><species>{species}</species><height>{height}</height>'
        f'<meta><entity dataset="trees" create="1" id="{entity_id}">'
        f"<label>{species} {height}</label></entity>"
        f"<instanceID>uuid:{uuid.uuid4()}</instanceID></meta></data>"
    )


def visit(entity_id: str, height: int, base_version: int, branch: str = "") -> str:
    return (
        f'<data id="tree_visit" version="1"><tree>{entity_id}</tree><height>{height}</height>'
        f'<meta><entity dataset="trees" update="1" baseVersion="{base_version}" trunkVersion=""'
        f' branchId="{branch}" id="{entity_id}"/><instanceID>uuid:{uuid.uuid4()}</instanceID></meta></data>'
    )


class Server:
    def __init__(self, central: Central, project: int) -> None:
        self.http = httpx.Client(base_url=central.base_url, headers=central.admin_auth, timeout=30)
        self.project = project
        self.base = f"/v1/projects/{project}"

    def publish(self, name: str) -> None:
        body = (FIXTURES / name).read_bytes()
        response = self.http.post(
            f"{self.base}/forms?publish=true", content=body, headers={"Content-Type": "application/xml"}
        )
        assert response.status_code == 200, response.text

    def submit(self, form: str, xml: str) -> str:
        response = self.http.post(
            f"{self.base}/forms/{form}/submissions", content=xml, headers={"Content-Type": "application/xml"}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["instanceId"])

    def entity(self, entity_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"{self.base}/datasets/trees/entities/{entity_id}")
        return dict(response.json()) if response.status_code == 200 else None

    def entity_at(self, entity_id: str, version: int) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            found = self.entity(entity_id)
            return found if found and found["currentVersion"]["version"] >= version else None

        return dict(wait_for(check, f"entity {entity_id} at version {version}"))


@pytest.fixture
def server(central: Central) -> Server:
    return Server(central, central.create_project(f"Entities e2e {uuid.uuid4().hex[:6]}"))


def test_registration_follow_up_update_conflict_and_approval(server: Server) -> None:
    server.publish("tree_reg.xml")
    dataset = wait_for(
        lambda: (r := server.http.get(f"{server.base}/datasets/trees")).status_code == 200 and r.json(),
        "the list the registration form declares",
    )
    assert [p["name"] for p in dataset["properties"]] == ["species", "height"]
    assert dataset["sourceForms"] == [{"xmlFormId": "tree_reg", "name": "Tree registration"}]
    assert dataset["properties"][0]["forms"] == [{"xmlFormId": "tree_reg", "name": "Tree registration"}]

    oak = str(uuid.uuid4())
    server.submit("tree_reg", registration(oak, "oak", 12))
    created = server.entity_at(oak, 1)
    assert created["currentVersion"]["label"] == "oak 12"
    assert created["currentVersion"]["data"] == {"species": "oak", "height": "12"}
    versions = server.http.get(f"{server.base}/datasets/trees/entities/{oak}/versions").json()
    assert versions[0]["source"]["type"] == "submission"
    assert versions[0]["source"]["details"]["xmlFormId"] == "tree_reg"

    # The follow-up form gets the list through its manifest and downloads it as CSV.
    server.publish("tree_visit.xml")
    attachments = server.http.get(f"{server.base}/forms/tree_visit/attachments").json()
    assert attachments == [
        {
            "name": "trees.csv",
            "type": "file",
            "exists": True,
            "blobExists": False,
            "datasetExists": True,
            "hash": attachments[0]["hash"],
            "updatedAt": None,
        }
    ]
    manifest = server.http.get(
        f"{server.base}/forms/tree_visit/manifest", headers={"X-OpenRosa-Version": "1.0"}
    )
    media = etree.fromstring(manifest.content).find(f"{MANIFEST}mediaFile")
    assert media is not None and media.get("type") == "entityList"
    first_hash = media.findtext(f"{MANIFEST}hash")
    download = media.findtext(f"{MANIFEST}downloadUrl")
    integrity_url = media.findtext(f"{MANIFEST}integrityUrl")
    assert download is not None and integrity_url is not None
    rows = list(csv.reader(io.StringIO(server.http.get(download).text)))
    assert rows == [["name", "label", "__version", "species", "height"], [oak, "oak 12", "1", "oak", "12"]]

    # An update submission based on the current version: a clean new version.
    server.submit("tree_visit", visit(oak, 14, base_version=1))
    updated = server.entity_at(oak, 2)
    assert updated["currentVersion"]["data"]["height"] == "14" and updated["conflict"] is None
    second = etree.fromstring(
        server.http.get(
            f"{server.base}/forms/tree_visit/manifest", headers={"X-OpenRosa-Version": "1.0"}
        ).content
    ).find(f"{MANIFEST}mediaFile")
    assert second is not None and second.findtext(f"{MANIFEST}hash") != first_hash

    # Two devices that both started from version 1: the late one conflicts on height.
    server.submit("tree_visit", visit(oak, 15, base_version=1, branch=str(uuid.uuid4())))
    conflicted = server.entity_at(oak, 3)
    assert conflicted["conflict"] == "hard"
    assert conflicted["currentVersion"]["conflictingProperties"] == ["height"]
    assert conflicted["currentVersion"]["baseVersion"] == 1
    resolved = server.http.patch(f"{server.base}/datasets/trees/entities/{oak}?resolve=true", json={})
    assert resolved.status_code == 200 and resolved.json()["conflict"] is None

    # An update of an entity that does not exist is recorded, not applied.
    ghost = str(uuid.uuid4())
    ghost_instance = server.submit("tree_visit", visit(ghost, 3, base_version=1))
    errors = wait_for(
        lambda: [
            a
            for a in server.http.get("/v1/audits?action=entity.error").json()
            if a["acteeId"] == ghost_instance
        ],
        "the recorded entity error",
    )
    assert errors[0]["details"]["problem"]["code"] == 404.8

    # Integrity, as ODK Collect checks it for offline entities.
    server.http.delete(f"{server.base}/datasets/trees/entities/{oak}")
    integrity = server.http.get(integrity_url, params={"id": f"{oak},{ghost}"})
    entities = etree.fromstring(integrity.content).findall("entities/entity")
    assert [(e.get("id"), e.findtext("deleted")) for e in entities] == [(oak, "true")]

    # Approval required: a registration waits until its submission is approved.
    assert (
        server.http.patch(f"{server.base}/datasets/trees", json={"approvalRequired": True}).status_code == 200
    )
    ash = str(uuid.uuid4())
    instance = server.submit("tree_reg", registration(ash, "ash", 7))
    time.sleep(1.5)  # the worker has handled the event (and left the entity pending)
    assert server.entity(ash) is None
    turn_off = server.http.patch(f"{server.base}/datasets/trees", json={"approvalRequired": False})
    assert turn_off.status_code == 400 and turn_off.json()["code"] == 400.29
    review = server.http.patch(
        f"{server.base}/forms/tree_reg/submissions/{instance}", json={"reviewState": "approved"}
    )
    assert review.status_code == 200
    assert server.entity_at(ash, 1)["currentVersion"]["label"] == "ash 7"


def test_repeats_and_out_of_order_offline_updates_through_the_worker(server: Server) -> None:
    """Spec 2025.1 blocks in repeats and the offline backlog on the live server: the event
    worker applies them as submissions arrive, in branch order whatever the arrival order."""
    from tests.api.test_entities_backlog import offline_visit
    from tests.api.test_entities_repeats import PLOT_FORM, plot

    made = server.http.post(
        f"{server.base}/forms?publish=true",
        content=PLOT_FORM.encode(),
        headers={"Content-Type": "text/markdown"},
    )
    assert made.status_code == 200, made.text
    server.publish("tree_visit.xml")
    listed = wait_for(
        lambda: (
            (r := server.http.get(f"{server.base}/datasets/trees")).status_code == 200
            and r.json()["sourceForms"]
            and r.json()
        ),
        "the list the plot form declares in its repeat",
    )
    # The worker may have handled tree_visit's publication too (same batch): it may be listed.
    assert {"xmlFormId": "plot_trees", "name": "Trees of a plot", "repeatPath": "/tree/"} in listed[
        "sourceForms"
    ]
    assert {f["xmlFormId"] for f in listed["sourceForms"]} <= {"plot_trees", "tree_visit"}

    oak, elm = str(uuid.uuid4()), str(uuid.uuid4())
    server.submit("plot_trees", plot([(oak, "oak", "10", None), (elm, "elm", "20", None)]))
    assert server.entity_at(oak, 1)["currentVersion"]["label"] == "oak 10"
    assert server.entity_at(elm, 1)["currentVersion"]["data"] == {"species": "elm", "girth": "20"}

    # A device's two offline updates of the oak reach the server in reverse order.
    branch = str(uuid.uuid4())
    second = server.submit("tree_visit", offline_visit(oak, 7, base=2, trunk=1, branch=branch))
    wait_for(
        lambda: [
            a
            for a in server.http.get("/v1/audits?action=submission.backlog.hold").json()
            if a["acteeId"] == second
        ],
        "the second update held in the backlog",
    )
    assert server.entity_at(oak, 1)["currentVersion"]["version"] == 1
    server.submit("tree_visit", offline_visit(oak, 6, base=1, trunk=1, branch=branch))
    final = server.entity_at(oak, 3)
    assert final["currentVersion"]["data"]["height"] == "7" and final["conflict"] is None
    versions = server.http.get(f"{server.base}/datasets/trees/entities/{oak}/versions").json()
    assert [v["data"].get("height") for v in versions] == [None, "6", "7"]
