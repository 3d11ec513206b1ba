"""Bulk import of submission XML on real PostgreSQL: imported submissions are stored exactly as
normal ingestion stores the same XML (typed data, flags, findings, attachment rows, read-model
rows), the read model the import writes equals a rebuild, re-importing is harmless, and a bad
document fails its batch with nothing written."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
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
from tests.api.test_findings import FORM as RULES_FORM
from tests.api.test_findings import submission as rules_submission
from tests.api.test_forms import XML
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM, Actor, ActorType, Grant
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.submissions import ImportDocument
from odk_mcp.settings import Settings

PHOTO_FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>Photo</h:title><model>
    <instance><data id="photo"><pic/><n/><meta><instanceID/></meta></data></instance>
    <bind nodeset="/data/pic" type="binary"/><bind nodeset="/data/n" type="int"/>
  </model></h:head>
  <h:body><upload ref="/data/pic" mediatype="image/*"><label>Pic</label></upload>
    <input ref="/data/n"><label>N</label></input></h:body>
</h:html>"""


def households() -> list[Household]:
    return [
        Household("uuid:b1"),
        # Flagged: not an integer.
        Household("uuid:b2", name="Eve &amp; &lt;Co&gt;", size="x", income="", water=None),
        Household("uuid:b3", members=[]),
        Household("uuid:b4", version="2", water="piped", region="south"),  # form version 2
    ]


def rules_documents() -> list[bytes]:
    return [
        rules_submission("uuid:r1", "30", "yes", "", "a", ["10", "40"]),  # mage > age: finding
        rules_submission("uuid:r2", "", "no", "", "", []),  # required and relevant: findings
        rules_submission("uuid:r3", "150", "yes", "", "", ["5"]),  # constraint failed
    ]


def photo_documents() -> list[bytes]:
    return [
        b'<data id="photo"><pic>a.jpg</pic><n>3</n><meta><instanceID>uuid:p1</instanceID></meta></data>',
        b'<data id="photo"><pic/><n>seven</n><meta><instanceID>uuid:p2</instanceID></meta></data>',
    ]


async def publish(client: httpx.AsyncClient, admin: Person, pid: int, form: bytes) -> None:
    response = await client.post(
        f"/v1/projects/{pid}/forms", content=form, params={"publish": "true"}, headers={**admin.auth, **XML}
    )
    assert response.status_code == 200, response.text


async def two_projects(client: httpx.AsyncClient, admin: Person) -> tuple[int, int]:
    """Two projects with the same forms: one fed by HTTP, one by the import."""
    pids = []
    for name in ("Received", "Imported"):
        pid = await create_project(client, admin, name)
        await publish_household(client, admin, pid)
        await publish_v2(client, admin, pid)
        await publish(client, admin, pid, RULES_FORM)
        await publish(client, admin, pid, PHOTO_FORM)
        pids.append(pid)
    return pids[0], pids[1]


async def stored(container: Container, pid: int) -> dict[str, dict[str, Any]]:
    """Per instanceID, the stored submission, version, attachment and read-model values that do
    not depend on ids, times or the project."""
    query = """
        SELECT s.instance_id, s.xml_form_id, s.draft, s.submitter_id, s.device_id, s.review_state,
               v.instance_name, v.form_version, v.xml, v.xml_sha256, v.data, v.flags, v.findings,
               v.current, v.deprecated_id,
               (SELECT coalesce(json_agg(json_build_array(a.name, a.blob_sha256) ORDER BY a.name), '[]')
                  FROM submissions.attachments a WHERE a.version_id = v.id) AS attachments,
               r.edits, r.attachments_expected, r.attachments_present, r.flag_count, r.finding_count,
               r.data AS row_data, r.instance_name AS row_name, r.form_version AS row_version,
               r.current_instance_id,
               (SELECT coalesce(json_agg(json_build_array(p.repeat_path, p.key, p.parent_key, p.ordinal,
                                                          p.seq, p.data) ORDER BY p.repeat_path, p.seq), '[]')
                  FROM aggregation.repeat_rows p WHERE p.submission_id = s.id) AS repeats
        FROM submissions.submissions s
        JOIN submissions.versions v ON v.id = s.current_version_id
        LEFT JOIN aggregation.rows r ON r.submission_id = s.id
        WHERE s.project_id = :pid
    """
    async with container.db.read() as conn:
        found = (await conn.execute(text(query), {"pid": pid})).mappings().all()
    return {row["instance_id"]: dict(row) for row in found}


async def counts(container: Container) -> dict[str, int]:
    tables = [
        "submissions.submissions",
        "submissions.versions",
        "submissions.attachments",
        "aggregation.rows",
        "aggregation.repeat_rows",
        "events.outbox",
        "events.audits",
    ]
    async with container.db.read() as conn:
        return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in tables}


def actor(person: Person, admin: bool = True) -> Actor:
    """The facade-level actor of a test user (an administrator holds role 1 sitewide)."""
    return Actor(person.id, ActorType.USER, person.email, (Grant(role_id=1),) if admin else ())


def _without_exhausted_budget(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Rule evaluation stops at a wall-clock budget per submission (validation.py): on a
    starved machine one side may run out of it, and the findings then differ by design."""
    if any(f.get("rule") == "budget" for f in [*ours["findings"], *theirs["findings"]]):
        for row in (ours, theirs):
            row.pop("findings")
            row.pop("finding_count")


def _unstamped(row: Any) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "change_xid"}


def docs(xmls: list[bytes]) -> list[ImportDocument]:
    return [ImportDocument(x) for x in xmls]


async def test_imported_submissions_equal_received_ones_and_a_rebuild(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    received, imported = await two_projects(client, admin)
    for household in households():
        await submit(client, admin.auth, received, household)
    for xml in rules_documents():
        response = await client.post(
            f"/v1/projects/{received}/forms/rules/submissions", content=xml, headers={**admin.auth, **XML}
        )
        assert response.status_code == 200, response.text
    for xml in photo_documents():
        response = await client.post(
            f"/v1/projects/{received}/forms/photo/submissions", content=xml, headers={**admin.auth, **XML}
        )
        assert response.status_code == 200, response.text
    await catch_up(container)

    importer = container.submissions.importer
    before = await counts(container)
    result = await importer.import_batch(
        actor(admin), imported, "household", docs([h.xml() for h in households()])
    )
    assert (result.imported, result.skipped, result.conflicts) == (4, 0, [])
    result = await importer.import_many(
        actor(admin), imported, "rules", docs(rules_documents()), batch_size=2
    )
    assert result.imported == 3
    await importer.import_batch(actor(admin), imported, "photo", docs(photo_documents()))
    after = await counts(container)
    # Per batch: one event (submission.imported), no per-submission receipts; one audit row each.
    assert after["events.outbox"] - before["events.outbox"] == 4
    assert after["events.audits"] - before["events.audits"] == 9
    assert after["aggregation.rows"] - before["aggregation.rows"] == 9

    ours, theirs = await stored(container, imported), await stored(container, received)
    assert set(ours) == set(theirs) and len(ours) == 9
    for instance_id in ours:
        _without_exhausted_budget(ours[instance_id], theirs[instance_id])
    differing = {
        (i, k): (v, theirs[i][k]) for i, row in ours.items() for k, v in row.items() if theirs[i][k] != v
    }
    assert not differing
    # The cases above exercise what they claim: flags, findings, version 2, nested repeats, media.
    assert ours["uuid:b2"]["flag_count"] >= 1 and ours["uuid:b4"]["form_version"] == "2"
    assert ours["uuid:r1"]["finding_count"] >= 1 and ours["uuid:r2"]["finding_count"] >= 1
    assert (
        ours["uuid:p1"]["attachments"] == [["a.jpg", None]] and ours["uuid:p1"]["attachments_expected"] == 1
    )
    assert any(r[0] == "/hh/member/visit" for r in ours["uuid:b1"]["repeats"])

    # The read model the import wrote is what a rebuild writes, event bookkeeping included
    # (not the change stamp: the transaction that wrote the row).
    async with container.db.read() as conn:
        rows_before = (
            await conn.execute(text("SELECT * FROM aggregation.rows WHERE project_id = :p"), {"p": imported})
        ).mappings()
        with_events = sorted((_unstamped(r) for r in rows_before), key=lambda r: r["submission_id"])
    roots, repeats = await read_model(container)
    await container.aggregation.projector.rebuild()
    assert await read_model(container) == (roots, repeats)
    async with container.db.read() as conn:
        rows_after = (
            await conn.execute(text("SELECT * FROM aggregation.rows WHERE project_id = :p"), {"p": imported})
        ).mappings()
        assert sorted((_unstamped(r) for r in rows_after), key=lambda r: r["submission_id"]) == with_events

    # Imported submissions are ordinary ones afterwards: listed, served, edited through the API.
    listed = await client.get(f"/v1/projects/{imported}/forms/household/submissions", headers=admin.auth)
    assert sorted(s["instanceId"] for s in listed.json()) == ["uuid:b1", "uuid:b2", "uuid:b3", "uuid:b4"]
    feed = await client.get(f"/v1/projects/{imported}/forms/household.svc/Submissions", headers=admin.auth)
    assert feed.status_code == 200 and len(feed.json()["value"]) == 4
    await edit(client, admin.auth, imported, Household("uuid:b1-2", name="Ida", deprecated="uuid:b1"))
    await catch_up(container)
    row = (await stored(container, imported))["uuid:b1"]
    assert row["edits"] == 1 and row["current_instance_id"] == "uuid:b1-2"
    assert row["row_data"]["/hh_name"] == "Ida"


async def test_reimporting_skips_what_is_stored_and_reports_conflicts(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    await publish_v2(client, admin, pid)
    importer = container.submissions.importer
    xmls = [h.xml() for h in households()]
    first = await importer.import_batch(actor(admin), pid, "household", docs(xmls[:2]))
    assert first.imported == 2
    before = await counts(container)
    again = await importer.import_batch(
        actor(admin),
        pid,
        "household",
        docs([*xmls, xmls[2], Household("uuid:b1", name="Someone else").xml()]),
    )
    # b1, b2 stored and b3's second copy in the batch: skipped; b1 with other content: a conflict.
    assert (again.imported, again.skipped, again.conflicts) == (2, 3, ["uuid:b1"])
    after = await counts(container)
    assert after["submissions.submissions"] - before["submissions.submissions"] == 2
    assert after["aggregation.rows"] - before["aggregation.rows"] == 2
    assert after["events.outbox"] - before["events.outbox"] == 1
    async with container.db.read() as conn:
        payload = (
            await conn.execute(
                text(
                    "SELECT payload FROM events.outbox WHERE event = 'submission.imported'"
                    " ORDER BY id DESC LIMIT 1"
                )
            )
        ).scalar_one()
        ids = (
            (
                await conn.execute(
                    text(
                        "SELECT id FROM submissions.submissions WHERE instance_id IN ('uuid:b3', 'uuid:b4')"
                        " ORDER BY id"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert payload["submissionIds"] == list(ids) and payload["count"] == 2
    assert payload["xmlFormId"] == "household" and payload["projectId"] == pid
    nothing = await importer.import_batch(actor(admin), pid, "household", docs(xmls))
    assert (nothing.imported, nothing.skipped) == (0, 4)
    assert await counts(container) == after


@pytest.mark.parametrize(
    ("bad", "code", "says"),
    [
        (b"<data id='household'><unclosed></data>", 400.42, "Document 2 of the import is not a valid"),
        (b"<data><meta><instanceID>uuid:x</instanceID></meta></data>", 400.42, "no id attribute"),
        (Household("uuid:o", version="1").xml().replace(b'id="household"', b'id="other"'), 400.8, "for form"),
        (Household("uuid:v", version="9").xml(), 404.6, "'9' does not exist"),
        (Household("uuid:e2", deprecated="uuid:b1").xml(), 400.8, "is an edit"),
        (Household("").xml().replace(b"<instanceID></instanceID>", b""), 400.8, "no meta/instanceID"),
        (b"<!DOCTYPE x [<!ENTITY e 'boom'>]><data id='household'>&e;</data>", 400.42, "not a valid"),
    ],
)
async def test_a_bad_document_fails_its_batch_with_nothing_written(
    client: httpx.AsyncClient, container: Container, admin: Person, bad: bytes, code: float, says: str
) -> None:
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    importer = container.submissions.importer
    before = await counts(container)
    batch = docs([Household("uuid:g1").xml(), Household("uuid:g2").xml(), bad, Household("uuid:g3").xml()])
    with pytest.raises(Problem) as caught:
        await importer.import_batch(actor(admin), pid, "household", batch)
    assert caught.value.kind.code == code, caught.value.message
    assert says in caught.value.message
    assert await counts(container) == before


async def test_a_long_import_commits_the_batches_before_a_bad_document(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    """In worker processes, batch by batch: the batches before the bad document are committed,
    its own is not, and the error names the document; running it again (fixed) completes it."""
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    importer = container.submissions.importer
    good = [Household(f"uuid:m{i}").xml() for i in range(7)]
    broken = [*good[:5], b"<not xml", *good[5:]]
    with pytest.raises(Problem) as caught:
        await importer.import_many(actor(admin), pid, "household", docs(broken), batch_size=2, workers=1)
    assert caught.value.details["index"] == 5
    assert len(await stored(container, pid)) == 4  # batches [0, 1] and [2, 3]; [4, bad] failed
    seen: list[int] = []
    result = await importer.import_many(
        actor(admin),
        pid,
        "household",
        docs(good),
        batch_size=2,
        workers=1,
        progress=lambda total: seen.append(total.imported + total.skipped),
    )
    assert (result.imported, result.skipped) == (3, 4) and seen == [2, 4, 6, 7]
    assert sorted(await stored(container, pid)) == sorted(f"uuid:m{i}" for i in range(7))


async def test_importing_needs_rights_to_create_and_update_submissions(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    outsider = await make_user()
    with pytest.raises(Problem) as caught:
        await container.submissions.importer.import_batch(
            actor(outsider, admin=False), pid, "household", docs([Household("uuid:z").xml()])
        )
    assert caught.value.kind.status == 403
    missing = await container.submissions.importer.import_batch(SYSTEM, pid, "household", [])
    assert missing.imported == 0
    with pytest.raises(Problem) as unknown:
        await container.submissions.importer.import_batch(
            SYSTEM, pid, "nope", docs([Household("uuid:z").xml().replace(b"household", b"nope")])
        )
    assert unknown.value.kind.code == 404.1
    assert await stored(container, pid) == {}


async def test_the_import_command_reads_files_folders_and_zips(
    client: httpx.AsyncClient, container: Container, admin: Person, settings: Settings, tmp_path: Path
) -> None:
    """`odk-mcp import` as an operator runs it, in a real process on the test database."""
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    folder = tmp_path / "instances" / "nested"
    folder.mkdir(parents=True)
    (folder / "one.xml").write_bytes(Household("uuid:c1").xml())
    (folder / "ignored.txt").write_text("not a submission")
    single = tmp_path / "two.xml"
    single.write_bytes(Household("uuid:c2").xml())
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a/three.xml", Household("uuid:c3").xml())
        zipped.writestr("four.xml", Household("uuid:c4").xml())
    env = {
        **os.environ,
        "ODK_MCP_DATABASE_URL": settings.database_url.get_secret_value() if settings.database_url else "",
        "ODK_MCP_DATA_DIR": str(settings.data_dir),
        "ODK_MCP_LOG_LEVEL": "ERROR",
    }
    command = [sys.executable, "-m", "odk_mcp", "import", "--project", str(pid), "--form", "household"]
    paths = [str(tmp_path / "instances"), str(single), str(archive)]
    done = await anyio.run_process([*command, "--batch-size", "3", *paths], env=env, check=False)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    assert "imported 4 submissions, skipped 0" in output
    assert sorted(await stored(container, pid)) == ["uuid:c1", "uuid:c2", "uuid:c3", "uuid:c4"]

    (folder / "bad.xml").write_bytes(b"<data id='household'>")
    done = await anyio.run_process([*command, *paths], env=env, check=False)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0 and "not a valid submission" in output, output
    assert len(await stored(container, pid)) == 4


async def test_an_integer_answer_beyond_64_bits_imports_as_it_is_received(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    # Rows go to PostgreSQL as JSON text written by orjson, which refuses integers beyond 64
    # bits; such an answer (an `int` question may get one) takes the standard library's path.
    await subscribe(container)
    received, imported = await two_projects(client, admin)
    huge = Household("uuid:huge", size="123456789012345678901234567890")
    await submit(client, admin.auth, received, huge)
    await catch_up(container)
    result = await container.submissions.importer.import_batch(
        actor(admin), imported, "household", docs([huge.xml()])
    )
    assert (result.imported, result.conflicts) == (1, [])
    ours, theirs = await stored(container, imported), await stored(container, received)
    assert ours["uuid:huge"]["data"]["size"] == 123456789012345678901234567890
    assert ours["uuid:huge"]["row_data"]["/size"] == 123456789012345678901234567890
    _without_exhausted_budget(ours["uuid:huge"], theirs["uuid:huge"])
    assert ours["uuid:huge"] == theirs["uuid:huge"]
