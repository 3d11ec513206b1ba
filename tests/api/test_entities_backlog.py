"""The backlog of offline entity updates (spec 2024.1 `branchId`/`trunkVersion`/`baseVersion`)
on real PostgreSQL: updates of one offline branch that arrive out of order are held and applied
in order once their predecessor arrives, in-order updates apply at once, an update that
overtakes its entity's offline creation waits for it, and held updates are forced after the
wait — by the sweep, the periodic task of the worker — as Central does."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.api.test_entity_sources import deliver, publish, submit
from tests.conftest import Person
from tests.integration.test_entities_from_submissions import registration

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "entities"


def offline_visit(
    entity_id: str,
    height: int,
    base: int,
    trunk: int | None,
    branch: str,
    instance: str | None = None,
    deprecated: str | None = None,
) -> str:
    """A tree visit made offline: `base` counts in the device's branch."""
    edit = f"<deprecatedID>{deprecated}</deprecatedID>" if deprecated else ""
    instance = instance or f"uuid:{uuid.uuid4()}"
    return (
        f'<data id="tree_visit" version="1"><tree>{entity_id}</tree><height>{height}</height>'
        f'<meta><entity dataset="trees" update="1" baseVersion="{base}" trunkVersion="{trunk or ""}"'
        f' branchId="{branch}" id="{entity_id}"/><instanceID>{instance}</instanceID>'
        f"{edit}</meta></data>"
    )


class Trees:
    def __init__(self, client: httpx.AsyncClient, admin: Person, container: Container, project: int) -> None:
        self.client, self.admin, self.container, self.project = client, admin, container, project

    async def send(self, form: str, xml: str) -> None:
        await submit(self.client, self.admin, self.project, form, xml)
        await deliver(self.container, ("submission.received",))

    async def entity(self, uid: str) -> Any:
        path = f"/v1/projects/{self.project}/datasets/trees/entities/{uid}"
        response = await self.client.get(path, headers=self.admin.auth)
        return response.json() if response.status_code == 200 else None

    async def versions(self, uid: str) -> list[dict[str, Any]]:
        path = f"/v1/projects/{self.project}/datasets/trees/entities/{uid}/versions"
        return list((await self.client.get(path, headers=self.admin.auth)).json())

    async def held(self) -> int:
        async with self.container.db.read() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM entities.backlog"))).scalar_one())

    async def actions(self) -> list[str]:
        audits = (await self.client.get("/v1/audits", headers=self.admin.auth)).json()
        return [a["action"] for a in reversed(audits) if a["action"].startswith("submission.backlog")]


@pytest.fixture
async def trees(client: httpx.AsyncClient, admin: Person, container: Container) -> Trees:
    project = (await container.forms.projects.create(SYSTEM, "Offline", None)).id
    await publish(client, admin, project, (FIXTURES / "tree_reg.xml").read_bytes())
    await publish(client, admin, project, (FIXTURES / "tree_visit.xml").read_bytes())
    await deliver(container, ("form.published",))
    return Trees(client, admin, container, project)


async def test_out_of_order_updates_of_a_branch_wait_for_their_predecessor(trees: Trees) -> None:
    oak, branch = str(uuid.uuid4()), str(uuid.uuid4())
    await trees.send("tree_reg", registration(oak, "oak", 3))
    # The device's second offline update arrives first: held, the entity untouched.
    await trees.send("tree_visit", offline_visit(oak, 6, base=2, trunk=1, branch=branch))
    assert (await trees.entity(oak))["currentVersion"]["version"] == 1
    assert await trees.held() == 1
    assert await trees.actions() == ["submission.backlog.hold"]
    # The first one arrives: applied, and the held one after it, in branch order.
    await trees.send("tree_visit", offline_visit(oak, 5, base=1, trunk=1, branch=branch))
    versions = await trees.versions(oak)
    assert [(v["version"], v["data"]["height"], v["baseVersion"]) for v in versions] == [
        (1, "3", None),
        (2, "5", 1),
        (3, "6", 2),
    ]
    assert [(v["branchId"], v["branchBaseVersion"]) for v in versions[1:]] == [(branch, 1), (branch, 2)]
    assert (await trees.entity(oak))["conflict"] is None
    assert await trees.held() == 0
    assert await trees.actions() == ["submission.backlog.hold", "submission.backlog.reprocess"]


async def test_a_held_update_edited_meanwhile_is_applied_as_edited(trees: Trees) -> None:
    fir, branch = str(uuid.uuid4()), str(uuid.uuid4())
    first, second = f"uuid:{uuid.uuid4()}", f"uuid:{uuid.uuid4()}"
    await trees.send("tree_reg", registration(fir, "fir", 3))
    await trees.send("tree_visit", offline_visit(fir, 6, base=2, trunk=1, branch=branch, instance=first))
    edited = await trees.client.put(
        f"/v1/projects/{trees.project}/forms/tree_visit/submissions/{first}",
        content=offline_visit(fir, 8, base=2, trunk=1, branch=branch, instance=second, deprecated=first),
        headers={**trees.admin.auth, "Content-Type": "application/xml"},
    )
    assert edited.status_code == 200, edited.text
    await deliver(trees.container, ("submission.edited",))
    assert await trees.held() == 2  # the first version's hold, and the edit's
    await trees.send("tree_visit", offline_visit(fir, 5, base=1, trunk=1, branch=branch))
    versions = await trees.versions(fir)
    assert [v["data"]["height"] for v in versions] == ["3", "5", "8"]
    assert versions[2]["source"]["details"]["instanceId"] == second
    assert await trees.held() == 0


async def test_in_order_updates_apply_at_once_and_another_writer_makes_a_soft_conflict(
    trees: Trees,
) -> None:
    elm, branch = str(uuid.uuid4()), str(uuid.uuid4())
    await trees.send("tree_reg", registration(elm, "elm", 3))
    await trees.send("tree_visit", offline_visit(elm, 4, base=1, trunk=1, branch=branch))
    # Someone else writes between the device's two updates: the branch was interrupted.
    patched = await trees.client.patch(
        f"/v1/projects/{trees.project}/datasets/trees/entities/{elm}?force=true",
        json={"data": {"species": "wych elm"}},
        headers=trees.admin.auth,
    )
    assert patched.status_code == 200
    await trees.send("tree_visit", offline_visit(elm, 5, base=2, trunk=1, branch=branch))
    found = await trees.entity(elm)
    assert found["currentVersion"]["version"] == 4 and found["currentVersion"]["baseVersion"] == 2
    assert found["currentVersion"]["data"] == {"species": "wych elm", "height": "5"}
    assert found["conflict"] == "soft"
    assert await trees.held() == 0 and await trees.actions() == []


async def test_an_update_that_overtakes_its_offline_creation_waits_for_it(trees: Trees) -> None:
    ash, branch = str(uuid.uuid4()), str(uuid.uuid4())
    await trees.send("tree_visit", offline_visit(ash, 9, base=1, trunk=None, branch=branch))
    assert await trees.entity(ash) is None and await trees.held() == 1
    errors = (await trees.client.get("/v1/audits?action=entity.error", headers=trees.admin.auth)).json()
    assert errors == []  # held, not refused
    await trees.send("tree_reg", registration(ash, "ash", 7))
    found = await trees.entity(ash)
    assert found["currentVersion"]["version"] == 2
    assert found["currentVersion"]["data"] == {"species": "ash", "height": "9"}
    assert await trees.held() == 0


async def test_held_updates_are_forced_after_the_wait(trees: Trees) -> None:
    fir, yew, branch = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await trees.send("tree_reg", registration(fir, "fir", 3))
    await trees.send("tree_visit", offline_visit(fir, 8, base=2, trunk=1, branch=branch))  # 1 never comes
    await trees.send("tree_visit", offline_visit(yew, 4, base=1, trunk=None, branch=str(uuid.uuid4())))
    assert await trees.held() == 2
    sweeper = trees.container.entities.backlog
    assert await sweeper.process() == 0  # not waited long enough (5 days by default)
    async with trees.container.db.transaction() as conn:
        await conn.execute(text("UPDATE entities.backlog SET held_at = now() - interval '6 days'"))
    assert await sweeper.process() == 2
    assert await trees.held() == 0
    forced = await trees.entity(fir)
    assert forced["currentVersion"]["version"] == 2 and forced["currentVersion"]["data"]["height"] == "8"
    assert forced["currentVersion"]["baseVersion"] == 1  # built on what the server had
    # An update whose entity never arrived creates it; its late creation is applied as an update.
    made = await trees.entity(yew)
    assert made["currentVersion"]["label"] == "auto generated"
    assert (await trees.versions(yew))[0]["source"]["forceProcessed"] is True
    await trees.send("tree_reg", registration(yew, "yew", 4))
    late = await trees.entity(yew)
    assert late["currentVersion"]["version"] == 2 and late["currentVersion"]["label"] == "yew 4"
    assert late["conflict"] == "hard" and late["currentVersion"]["conflictingProperties"] == [
        "label",
        "species",
    ]
    assert (await trees.actions()).count("submission.backlog.force") == 2


@pytest.mark.parametrize(
    "settings_overrides", [{"entity_backlog_wait_hours": 0.0, "entity_backlog_sweep_seconds": 0.1}]
)
async def test_the_worker_sweeps_the_backlog_periodically(trees: Trees) -> None:
    pine, branch = str(uuid.uuid4()), str(uuid.uuid4())
    await trees.send("tree_reg", registration(pine, "pine", 3))
    await trees.send("tree_visit", offline_visit(pine, 9, base=3, trunk=1, branch=branch))
    trees.container.entities.backlog.start()
    try:
        for _ in range(100):
            if await trees.held() == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await trees.container.entities.backlog.stop()
    assert (await trees.entity(pine))["currentVersion"]["data"]["height"] == "9"
