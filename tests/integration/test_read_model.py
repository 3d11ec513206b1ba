"""The aggregation read model on real PostgreSQL, kept current by the real event worker:
rows follow every change of a submission (receipt, edit, review, attachments, deletion,
restore), form versions that add, drop and retype fields coexist, replays are harmless, and a
rebuild from the stored submissions gives exactly the incrementally maintained rows."""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy import text
from tests.aggregation_forms import (
    Household,
    catch_up,
    create_project,
    edit,
    publish_household,
    publish_v2,
    read_model,
    submit,
    subscribe,
)
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.events import Event
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.aggregation.domain.naming import row_id


async def test_rows_follow_every_change_of_a_submission(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    await submit(client, admin.auth, pid, Household("uuid:h1"))
    # One delivery of the receipt per consumer of it (the read model's, and the webhooks'), and
    # of the publication per consumer of that (the entities service's).
    receivers = [c for c in map(container.consumers.get, container.consumers.names) if c is not None]
    expected = sum(("submission.received" in c.events) + ("form.published" in c.events) for c in receivers)
    assert await catch_up(container) == expected

    roots, repeats = await read_model(container)
    assert len(roots) == 1
    row = roots[0]
    assert row["instance_id"] == row["current_instance_id"] == "uuid:h1"
    assert (row["project_id"], row["xml_form_id"], row["draft"], row["form_version"]) == (
        pid,
        "household",
        False,
        "1",
    )
    assert row["submitter_id"] == admin.id
    assert row["edits"] == 0 and row["review_state"] is None and row["deleted_at"] is None
    assert row["data"] == {
        "/hh_name": "Ada",
        "/region": "north",
        "/size": 4,
        "/income": 1250.5,
        "/visit_date": "2024-03-01",
        "/started": "2024-03-01T09:30:00.000+02:00",
        "/location": "-1.2921 36.8219 1795 5",
        "/assets": "radio tv",
        "/grp/note-text": "fine",
        "/grp/consent": "yes",
        "/meta/instanceID": "uuid:h1",
    }
    assert [
        (r["repeat_path"], r["key"], r["parent_key"], r["ordinal"], r["seq"], r["data"]) for r in repeats
    ] == [
        (
            "/hh/member",
            "uuid:h1/hh/member[1]",
            "uuid:h1",
            1,
            1,
            {"/hh/member/mname": "Bo", "/hh/member/mage": 30},
        ),
        (
            "/hh/member",
            "uuid:h1/hh/member[2]",
            "uuid:h1",
            2,
            2,
            {"/hh/member/mname": "Cy", "/hh/member/mage": 7},
        ),
        (
            "/hh/member/visit",
            "uuid:h1/hh/member[1]/visit[1]",
            "uuid:h1/hh/member[1]",
            1,
            1,
            {"/hh/member/visit/vdate": "2024-01-01"},
        ),
        (
            "/hh/member/visit",
            "uuid:h1/hh/member[1]/visit[2]",
            "uuid:h1/hh/member[1]",
            2,
            2,
            {"/hh/member/visit/vdate": "2024-02-01"},
        ),
    ]

    # An edit replaces the data and the repeat rows as a whole.
    await edit(
        client,
        admin.auth,
        pid,
        Household("uuid:h1-v2", name="Ada L.", deprecated="uuid:h1", members=[("Di", "40", ["2024-05-05"])]),
    )
    await catch_up(container)
    roots, repeats = await read_model(container)
    row = roots[0]
    assert (row["instance_id"], row["current_instance_id"], row["edits"]) == ("uuid:h1", "uuid:h1-v2", 1)
    assert row["review_state"] == "edited" and row["updated_at"] is not None
    assert row["data"]["/hh_name"] == "Ada L." and row["data"]["/meta/deprecatedID"] == "uuid:h1"
    assert [(r["key"], r["parent_key"]) for r in repeats] == [
        ("uuid:h1/hh/member[1]", "uuid:h1"),
        ("uuid:h1/hh/member[1]/visit[1]", "uuid:h1/hh/member[1]"),
    ]

    base = f"/v1/projects/{pid}/forms/household/submissions/uuid:h1"
    reviewed = await client.patch(base, json={"reviewState": "approved"}, headers=admin.auth)
    assert reviewed.status_code == 200, reviewed.text
    await catch_up(container)
    assert (await read_model(container))[0][0]["review_state"] == "approved"

    assert (await client.delete(base, headers=admin.auth)).status_code == 200
    await catch_up(container)
    deleted_at = (await read_model(container))[0][0]["deleted_at"]
    assert isinstance(deleted_at, datetime)

    restored = await client.post(
        f"/v1/projects/{pid}/forms/household/submissions/uuid:h1/restore", headers=admin.auth
    )
    assert restored.status_code == 200, restored.text
    await catch_up(container)
    roots, repeats = await read_model(container)
    assert roots[0]["deleted_at"] is None
    assert len(repeats) == 2, "a restore keeps the rows"


async def test_attachment_counts_follow_uploads(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    form = (
        b'<?xml version="1.0"?><h:html xmlns="http://www.w3.org/2002/xforms" '
        b'xmlns:h="http://www.w3.org/1999/xhtml"><h:head><h:title>P</h:title><model><instance>'
        b'<data id="photos"><photo/><meta><instanceID/></meta></data></instance>'
        b'<bind nodeset="/data/photo" type="binary"/></model></h:head><h:body>'
        b'<upload ref="/data/photo" mediatype="image/*"><label>P</label></upload></h:body></h:html>'
    )
    created = await client.post(
        f"/v1/projects/{pid}/forms",
        content=form,
        params={"publish": "true"},
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert created.status_code == 200, created.text
    xml = b'<data id="photos"><photo>a.jpg</photo><meta><instanceID>uuid:p1</instanceID></meta></data>'
    base = f"/v1/projects/{pid}/forms/photos/submissions"
    posted = await client.post(base, content=xml, headers={**admin.auth, "Content-Type": "application/xml"})
    assert posted.status_code == 200, posted.text
    await catch_up(container)
    row = (await read_model(container))[0][0]
    assert (row["attachments_expected"], row["attachments_present"]) == (1, 0)

    uploaded = await client.post(
        base + "/uuid:p1/attachments/a.jpg",
        content=b"\xff\xd8jpeg",
        headers={**admin.auth, "Content-Type": "image/jpeg"},
    )
    assert uploaded.status_code == 200, uploaded.text
    await catch_up(container)
    row = (await read_model(container))[0][0]
    assert (row["attachments_expected"], row["attachments_present"]) == (1, 1)


async def test_form_versions_that_add_drop_and_retype_fields_coexist(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    await submit(client, admin.auth, pid, Household("uuid:old", size="5"))
    await publish_v2(client, admin, pid)
    await submit(client, admin.auth, pid, Household("uuid:new", version="2", size="five", water="well"))
    await catch_up(container)

    roots = {r["instance_id"]: r for r in (await read_model(container))[0]}
    old, new = roots["uuid:old"]["data"], roots["uuid:new"]["data"]
    assert (old["/size"], old["/income"], "/water" in old) == (5, 1250.5, False)
    assert (new["/size"], new["/water"], "/income" in new) == ("five", "well", False)
    assert (roots["uuid:old"]["form_version"], roots["uuid:new"]["form_version"]) == ("1", "2")

    form = await container.aggregation.read_model.form(SYSTEM, pid, "household", False)
    paths = [f.path for f in form.all_fields]
    assert "/income" in paths and "/water" in paths, "every version's fields, for deletedFields"
    assert paths.index("/income") < paths.index("/visit_date"), "a dropped field keeps its place"
    assert [f.path for f in form.fields if f.path in ("/income", "/water")] == ["/water"]


async def test_replays_and_stale_events_change_nothing(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    await submit(client, admin.auth, pid, Household("uuid:r1"))
    await catch_up(container)
    await edit(client, admin.auth, pid, Household("uuid:r1-b", name="Edited", deprecated="uuid:r1"))
    await catch_up(container)
    before = await read_model(container)
    async with container.db.read() as conn:
        events = (
            await conn.execute(
                text(
                    "SELECT id, event, payload, created_at FROM events.outbox WHERE event LIKE 'submission.%'"
                )
            )
        ).all()
    received = next(e for e in events if e.event == "submission.received")
    projector = container.aggregation.projector
    for event in events:  # every event again, in order, then the oldest once more
        async with container.db.transaction() as conn:
            await projector.handle(conn, Event(event.id, event.event, event.payload, event.created_at))
    async with container.db.transaction() as conn:
        await projector.handle(
            conn, Event(received.id, received.event, received.payload, received.created_at)
        )
    assert await read_model(container) == before
    assert before[0][0]["data"]["/hh_name"] == "Edited"


async def test_rebuild_catches_up_and_equals_the_incremental_model(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    # Stored before the read model existed: its rows are missing and no event will bring them
    # (the group writer writes a new submission's rows with it: they are removed here).
    await submit(client, admin.auth, pid, Household("uuid:early"))
    await forget_read_model(container)
    await subscribe(container)
    await submit(client, admin.auth, pid, Household("uuid:a", members=[]))
    await submit(client, admin.auth, pid, Household("uuid:b", region="south", assets=""))
    await edit(client, admin.auth, pid, Household("uuid:b2", deprecated="uuid:b", name="Bee"))
    await publish_v2(client, admin, pid)
    await submit(client, admin.auth, pid, Household("uuid:c", version="2", water="river"))
    base = f"/v1/projects/{pid}/forms/household/submissions/"
    assert (
        await client.patch(base + "uuid:a", json={"reviewState": "rejected"}, headers=admin.auth)
    ).is_success
    assert (await client.delete(base + "uuid:c", headers=admin.auth)).is_success
    await catch_up(container)

    incremental = await read_model(container)
    assert {r["instance_id"] for r in incremental[0]} == {"uuid:a", "uuid:b", "uuid:c"}, "no event, no row"

    progress: list[tuple[int, int]] = []
    rebuilt_count = await container.aggregation.projector.rebuild(
        batch_size=2, progress=lambda step: progress.append((step.done, step.total))
    )
    assert rebuilt_count == 4
    assert progress[-1] == (4, 4)
    rebuilt = await read_model(container)
    early = [r for r in rebuilt[0] if r["instance_id"] == "uuid:early"]
    assert len(early) == 1 and early[0]["data"]["/hh_name"] == "Ada"
    assert [r for r in rebuilt[0] if r["instance_id"] != "uuid:early"] == incremental[0]

    # From scratch: the same rows again.
    async with container.db.transaction() as conn:
        await conn.execute(text("TRUNCATE aggregation.rows, aggregation.repeat_rows"))
    await container.aggregation.projector.rebuild()
    assert await read_model(container) == rebuilt


async def forget_read_model(container: Container) -> None:
    """Remove every read-model row: as if the submissions had been stored before it existed
    (the group writer writes a new submission's rows in the transaction that stores it)."""
    async with container.db.transaction() as conn:
        await conn.execute(text("TRUNCATE aggregation.rows, aggregation.repeat_rows"))


def test_repeat_row_ids_are_centrals_join_ids() -> None:
    import hashlib

    assert row_id("uuid:1", "uuid:1") == "uuid:1"
    expected = hashlib.sha1(b"Submissions#uuid:1%%hh#%%member#1%%visit#0").hexdigest()
    assert row_id("uuid:1/hh/member[2]/visit[1]", "uuid:1") == expected


async def test_an_empty_read_model_catches_up_at_start(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    for n in range(3):
        await submit(client, admin.auth, pid, Household(f"uuid:c{n}"))
    await forget_read_model(container)  # stored by a server that had no read model yet
    assert await read_model(container) == ([], [])
    assert await container.aggregation.catch_up.needed()
    await container.aggregation.start()
    assert await container.aggregation.catch_up.wait() == 3
    roots, repeats = await read_model(container)
    assert sorted(r["instance_id"] for r in roots) == ["uuid:c0", "uuid:c1", "uuid:c2"]
    assert len(repeats) == 3 * 4
    assert not await container.aggregation.catch_up.needed(), "a built read model is left alone"
    await container.aggregation.stop()


async def test_answers_beyond_64_bits_and_awkward_text_reach_the_read_model_intact(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    # The read model's rows travel to PostgreSQL as one JSON document per batch: an integer
    # answer too big for orjson (it takes the standard library's path), quotes, backslashes,
    # control characters and non-ASCII text, and repeat rows too, must arrive as they were read.
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    awkward = 'Zoë "Z" \\ O&apos;Brien \u00a0 \u65e5\u672c'
    await submit(
        client,
        admin.auth,
        pid,
        Household(
            "uuid:big", name=awkward, size="123456789012345678901234567890", members=[("Ünï", "3", [])]
        ),
    )
    await submit(client, admin.auth, pid, Household("uuid:small"))
    await catch_up(container)
    roots, repeats = await read_model(container)
    by_id = {r["instance_id"]: r for r in roots}
    assert by_id["uuid:big"]["data"]["/size"] == 123456789012345678901234567890
    assert by_id["uuid:big"]["data"]["/hh_name"] == 'Zoë "Z" \\ O\'Brien \u00a0 \u65e5\u672c'
    assert by_id["uuid:small"]["data"]["/size"] == 4
    names = {r["data"].get("/hh/member/mname") for r in repeats if r["repeat_path"] == "/hh/member"}
    assert "Ünï" in names
    assert isinstance(by_id["uuid:big"]["created_at"], datetime)
