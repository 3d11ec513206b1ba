"""Entity blocks inside repeats (ODK entities spec 2025.1) on real PostgreSQL, with forms made
by pyxform from XLSForms through the upload API: one submission creates and updates several
entities (one per repeat instance) in several lists, exactly once however often its events
are delivered, all or none when one entity is refused, and only on approval where required."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from tests.api.test_entity_sources import deliver, submit
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM

HOUSEHOLD_FORM = """
| settings |
| | form_id | form_title | version |
| | household | Household and people | 1 |

| survey |
| | type         | name   | label     | save_to          |
| | text         | hh_id  | Household | households#hh_id |
| | begin_repeat | member | Member    |                  |
| | text         | mname  | Name      | people#full_name |
| | integer      | age    | Age       | people#age       |
| | end_repeat   |        |           |                  |

| entities |
| | list_name  | label                    |
| | households | concat('HH ', ${hh_id})  |
| | people     | ${mname}                 |
"""

PLOT_FORM = """
| settings |
| | form_id    | form_title      | version |
| | plot_trees | Trees of a plot | 1       |

| survey |
| | type         | name    | label   | save_to | calculation |
| | text         | plot    | Plot    |         |             |
| | begin_repeat | tree    | Tree    |         |             |
| | text         | tid | Tree id |         |             |
| | calculate    | nid  |         |         | uuid()      |
| | text         | species | Species | species |             |
| | integer      | girth   | Girth   | girth   |             |
| | end_repeat   |         |         |         |             |

| entities |
| | list_name | label | entity_id | create_if | update_if |
| | trees | concat(${species}, ' ', ${girth}) | coalesce(${tid}, ${nid}) | ${tid} = '' | ${tid} != '' |
"""


async def publish_md(client: httpx.AsyncClient, admin: Person, project: int, md: str) -> None:
    response = await client.post(
        f"/v1/projects/{project}/forms?publish=true",
        content=md.encode(),
        headers={**admin.auth, "Content-Type": "text/markdown"},
    )
    assert response.status_code == 200, response.text


def household(hh_id: str, hh_uuid: str, people: list[tuple[str, str, str]]) -> str:
    members = "".join(
        f"<member><mname>{name}</mname><age>{age}</age><meta>"
        f'<entity dataset="people" create="1" id="{pid}"><label>{name}</label></entity></meta></member>'
        for pid, name, age in people
    )
    return (
        f'<data id="household" version="1"><hh_id>{hh_id}</hh_id>{members}<meta>'
        f'<instanceID>uuid:{uuid.uuid4()}</instanceID><entity dataset="households" create="1" id="{hh_uuid}">'
        f"<label>HH {hh_id}</label></entity></meta></data>"
    )


def plot(trees: list[tuple[str, str, str, int | None]]) -> str:
    """Trees as (uuid, species, girth, baseVersion): a baseVersion makes it an update."""
    body = ""
    for tid, species, girth, base in trees:
        update = base is not None
        label = f"{species} {girth}" if species else ""
        body += (
            f"<tree><tid>{tid if update else ''}</tid><nid>{tid}</nid>"
            f"<species>{species}</species><girth>{girth}</girth><meta>"
            f'<entity dataset="trees" create="{"0" if update else "1"}" update="{"1" if update else "0"}"'
            f' baseVersion="{base or ""}" trunkVersion="" branchId="" id="{tid}"><label>{label}</label>'
            "</entity></meta></tree>"
        )
    return (
        f'<data id="plot_trees" version="1"><plot>P1</plot>{body}'
        f"<meta><instanceID>uuid:{uuid.uuid4()}</instanceID></meta></data>"
    )


async def entity(client: httpx.AsyncClient, admin: Person, path: str) -> Any:
    response = await client.get(path, headers=admin.auth)
    return response.json() if response.status_code == 200 else None


async def test_one_submission_feeds_two_lists_from_the_top_level_and_a_repeat(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = (await container.forms.projects.create(SYSTEM, "Households", None)).id
    base = f"/v1/projects/{project}"
    await publish_md(client, admin, project, HOUSEHOLD_FORM)
    await deliver(container, ("form.published",), times=2)

    people = (await client.get(f"{base}/datasets/people", headers=admin.auth)).json()
    assert people["sourceForms"] == [
        {"xmlFormId": "household", "name": "Household and people", "repeatPath": "/member/"}
    ]
    assert [(p["name"], p["forms"]) for p in people["properties"]] == [
        ("full_name", [{"xmlFormId": "household", "name": "Household and people"}]),
        ("age", [{"xmlFormId": "household", "name": "Household and people"}]),
    ]
    households = (await client.get(f"{base}/datasets/households", headers=admin.auth)).json()
    assert households["sourceForms"] == [{"xmlFormId": "household", "name": "Household and people"}]
    assert [p["name"] for p in households["properties"]] == ["hh_id"]

    hh, ada, bo = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await submit(
        client, admin, project, "household", household("7", hh, [(ada, "Ada", "35"), (bo, "Bo", "12")])
    )
    assert await deliver(container, ("submission.received",), times=3) == 1

    found = await entity(client, admin, f"{base}/datasets/people/entities/{ada}")
    assert found is not None
    assert found["currentVersion"]["label"] == "Ada"
    assert found["currentVersion"]["data"] == {"full_name": "Ada", "age": "35"}
    second = await entity(client, admin, f"{base}/datasets/people/entities/{bo}")
    assert second is not None and second["currentVersion"]["data"] == {"full_name": "Bo", "age": "12"}
    top = await entity(client, admin, f"{base}/datasets/households/entities/{hh}")
    assert top is not None and top["currentVersion"]["data"] == {"hh_id": "7"}
    # One source: both people name the same submission version.
    sources = [
        (await client.get(f"{base}/datasets/people/entities/{pid}/versions", headers=admin.auth)).json()[0][
            "source"
        ]
        for pid in (ada, bo)
    ]
    assert sources[0] == sources[1] and sources[0]["details"]["xmlFormId"] == "household"
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT d.name, o.outcome FROM entities.submission_outcomes o"
                    " JOIN entities.datasets d ON d.id = o.dataset_id ORDER BY d.name"
                )
            )
        ).all()
        assert [tuple(r) for r in rows] == [("households", "created"), ("people", "applied")]
        assert (await conn.execute(text("SELECT count(*) FROM entities.versions"))).scalar_one() == 3


async def test_repeat_instances_create_and_update_all_or_none_and_wait_for_approval(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = (await container.forms.projects.create(SYSTEM, "Plots", None)).id
    base = f"/v1/projects/{project}/datasets/trees"
    await publish_md(client, admin, project, PLOT_FORM)
    await deliver(container, ("form.published",))
    listed = (await client.get(base, headers=admin.auth)).json()
    assert listed["sourceForms"] == [
        {"xmlFormId": "plot_trees", "name": "Trees of a plot", "repeatPath": "/tree/"}
    ]

    oak, elm = str(uuid.uuid4()), str(uuid.uuid4())
    await submit(
        client, admin, project, "plot_trees", plot([(oak, "oak", "10", None), (elm, "elm", "20", None)])
    )
    await deliver(container, ("submission.received",))
    # One submission updates one tree and registers another.
    ash = str(uuid.uuid4())
    await submit(client, admin, project, "plot_trees", plot([(oak, "oak", "11", 1), (ash, "ash", "5", None)]))
    await deliver(container, ("submission.received",), times=2)
    updated = await entity(client, admin, f"{base}/entities/{oak}")
    assert updated is not None
    assert updated["currentVersion"]["version"] == 2 and updated["currentVersion"]["label"] == "oak 11"
    assert updated["currentVersion"]["data"] == {"species": "oak", "girth": "11"}
    made = await entity(client, admin, f"{base}/entities/{ash}")
    assert made is not None and made["currentVersion"]["version"] == 1

    # A blank label in the second repeat instance: neither tree is kept, the error names it.
    pine, bad = str(uuid.uuid4()), str(uuid.uuid4())
    await submit(client, admin, project, "plot_trees", plot([(pine, "pine", "3", None), (bad, "", "", None)]))
    await deliver(container, ("submission.received",))
    assert await entity(client, admin, f"{base}/entities/{pine}") is None
    errors = (await client.get("/v1/audits?action=entity.error", headers=admin.auth)).json()
    assert errors[0]["details"]["problem"]["code"] == 400.28
    assert errors[0]["details"]["repeatPath"] == "/tree/" and errors[0]["details"]["position"] == 2
    assert errors[0]["details"]["entityUuid"] == bad and errors[0]["details"]["dataset"] == "trees"

    # Approval required: every tree of the submission waits for the approval.
    approval = await client.patch(base, json={"approvalRequired": True}, headers=admin.auth)
    assert approval.status_code == 200
    fir, yew = str(uuid.uuid4()), str(uuid.uuid4())
    xml = plot([(fir, "fir", "8", None), (yew, "yew", "9", None)])
    instance = xml.split("<instanceID>")[1].split("</instanceID>")[0]
    await submit(client, admin, project, "plot_trees", xml)
    await deliver(container, ("submission.received",))
    assert await entity(client, admin, f"{base}/entities/{fir}") is None
    review = await client.patch(
        f"/v1/projects/{project}/forms/plot_trees/submissions/{instance}",
        json={"reviewState": "approved"},
        headers=admin.auth,
    )
    assert review.status_code == 200, review.text
    await deliver(container, ("submission.reviewed",), times=2)
    for tid in (fir, yew):
        assert await entity(client, admin, f"{base}/entities/{tid}") is not None
    async with container.db.read() as conn:
        live = (
            await conn.execute(text("SELECT count(*) FROM entities.entities WHERE deleted_at IS NULL"))
        ).scalar_one()
    assert live == 5  # oak, elm, ash, fir, yew


async def test_nested_blocks_need_spec_2025_1(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = (await container.forms.projects.create(SYSTEM, "Old spec", None)).id
    converted = await client.post(
        f"/v1/projects/{project}/forms?publish=true",
        content=PLOT_FORM.encode(),
        headers={**admin.auth, "Content-Type": "text/markdown"},
    )
    assert converted.status_code == 200
    xml = (await client.get(f"/v1/projects/{project}/forms/plot_trees.xml", headers=admin.auth)).text
    older = xml.replace('entities-version="2025.1.0"', 'entities-version="2024.1.0"').replace(
        'id="plot_trees" version="1"', 'id="plot_trees_old" version="1"'
    )
    response = await client.post(
        f"/v1/projects/{project}/forms?publish=true",
        content=older.encode(),
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text
    await deliver(container, ("form.published",))
    audits = (await client.get("/v1/audits?action=entity.form.error", headers=admin.auth)).json()
    assert [a["acteeId"] for a in audits] == ["plot_trees_old"]
    assert "2025.1" in audits[0]["details"]["reason"]
