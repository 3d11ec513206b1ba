"""The group writer for new submissions, through the real app and PostgreSQL: requests share
batches, one bad row never fails its neighbours, a failed batch never yields a 201, and the rows
a batch writes are the rows the one-transaction path writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from tests.aggregation_forms import catch_up, read_model, subscribe
from tests.api.test_submissions import OR, instance, message, multipart, setup
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.gateway import create_app
from odk_mcp.services.submissions import GroupWriter


def writer_of(container: Container) -> GroupWriter:
    writer = container.submissions.writer
    assert writer is not None, "group commit is on by default"
    return writer


RECEIVED = "SELECT count(*) FROM events.outbox WHERE event = 'submission.received'"


async def scalar(container: Container, sql: str) -> object:
    async with container.db.read() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def test_concurrent_new_submissions_share_batches_and_are_all_stored(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    ids = [f"uuid:batch-{i}" for i in range(40)]
    responses = await asyncio.gather(
        *(client.post(base, files=multipart(instance(i), ("p.jpg", b"photo")), headers=OR) for i in ids)
    )
    assert [r.status_code for r in responses] == [201] * 40
    writer = writer_of(container)
    assert writer.rows == 40
    assert writer.largest > 1, "concurrent requests were committed together"
    assert writer.batches < 40
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT s.instance_id, v.instance_id = s.instance_id AS same, v.current,"
                    " (SELECT count(*) FROM submissions.attachments a WHERE a.version_id = v.id) AS files,"
                    " (SELECT count(*) FROM submissions.attachments a WHERE a.version_id = v.id"
                    "  AND a.blob_sha256 IS NOT NULL AND a.updated_at IS NOT NULL"
                    "  AND a.content_type IS NOT NULL) AS present"
                    " FROM submissions.submissions s"
                    " JOIN submissions.versions v ON v.id = s.current_version_id"
                )
            )
        ).all()
        audits = (
            await conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT target_id), min(actor_id) = max(actor_id)"
                    " FROM events.audits WHERE action = 'submission.create'"
                )
            )
        ).one()
        payloads = (
            (
                await conn.execute(
                    text("SELECT payload FROM events.outbox WHERE event = 'submission.received'")
                )
            )
            .scalars()
            .all()
        )
    assert sorted(r.instance_id for r in rows) == sorted(ids)
    assert all(r.same and r.current and r.files == 2 and r.present == 1 for r in rows)
    assert tuple(audits) == (40, 40, True)
    assert len(payloads) == 40
    assert {frozenset(p) for p in payloads} == {
        frozenset({"projectId", "xmlFormId", "formDefId", "instanceId", "submissionId", "versionId", "draft"})
    }
    # Every event names the submission and version that were stored for its instanceID.
    async with container.db.read() as conn:
        mismatched = await conn.execute(
            text(
                "SELECT count(*) FROM events.outbox o JOIN submissions.submissions s"
                " ON s.id = (o.payload->>'submissionId')::bigint"
                " WHERE o.event = 'submission.received' AND (s.instance_id <> o.payload->>'instanceId'"
                " OR s.current_version_id <> (o.payload->>'versionId')::bigint)"
            )
        )
        assert mismatched.scalar_one() == 0


async def test_batched_submissions_read_back_like_careful_ones(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    created = await client.post(base, files=multipart(instance("uuid:read")), headers=OR)
    assert created.status_code == 201
    url = f"/v1/projects/{pid}/forms/visit/submissions/uuid:read"
    got = (await client.get(url, headers=admin.auth)).json()
    assert got["instanceId"] == "uuid:read"
    assert got["currentVersion"]["current"] is True
    assert got["currentVersion"]["formVersion"] == "3"
    assert (await client.get(url + ".xml", headers=admin.auth)).content == instance("uuid:read")
    # The REST create path goes through the writer too and answers with the stored submission.
    rest = await client.post(
        f"/v1/projects/{pid}/forms/visit/submissions",
        content=instance("uuid:rest"),
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert rest.status_code == 200, rest.text
    assert rest.json()["instanceId"] == "uuid:rest"
    assert writer_of(container).rows == 2


async def test_a_conflicting_row_inside_a_batch_does_not_fail_its_neighbours(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    assert (await client.post(base, files=multipart(instance("uuid:taken")), headers=OR)).status_code == 201
    edit = instance("uuid:taken-v2", deprecated="uuid:taken")
    assert (await client.post(base, files=multipart(edit), headers=OR)).status_code == 201
    bodies = [instance(f"uuid:n{i}") for i in range(12)]
    bodies += [
        instance("uuid:taken"),  # an identical resend: 201, nothing new
        instance("uuid:taken", name="Other"),  # different XML for a stored instanceID: 409
        instance("uuid:taken-v2", name="Other"),  # reuses an edit's instanceID: 409
        instance("uuid:twice"),  # twice in the same batch: one row, both 201
        instance("uuid:twice"),
    ]
    responses = await asyncio.gather(*(client.post(base, files=multipart(b), headers=OR) for b in bodies))
    statuses = [r.status_code for r in responses]
    assert statuses == [201] * 12 + [201, 409, 409, 201, 201], [r.text for r in responses]
    assert await scalar(container, "SELECT count(*) FROM submissions.submissions") == 14
    assert await scalar(container, "SELECT count(*) FROM submissions.versions") == 15
    assert (
        await scalar(
            container, "SELECT count(*) FROM submissions.submissions WHERE current_version_id IS NULL"
        )
        == 0
    )
    assert await scalar(container, RECEIVED) == 14


@pytest.fixture
async def lenient_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A client that receives the app's 500 answers instead of re-raising the server's error."""
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4321), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.mark.parametrize("when", ["insert", "commit"])
async def test_a_failed_batch_answers_no_201_and_good_rows_are_retried_alone(
    client: httpx.AsyncClient,
    lenient_client: httpx.AsyncClient,
    admin: Person,
    container: Container,
    when: str,
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    # A real database failure for one row: at insert, or only when its transaction commits
    # (a deferred constraint trigger), so the batch holding it fails as a whole.
    timing = "" if when == "insert" else "DEFERRABLE INITIALLY DEFERRED"
    async with container.db.transaction() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.instance_id LIKE 'uuid:poison%' THEN RAISE EXCEPTION 'poisoned row'; END IF;"
                " RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON submissions.versions {timing}"
                " FOR EACH ROW EXECUTE FUNCTION public.poison()"
            )
        )
    bodies = [instance(f"uuid:good{i}") for i in range(10)] + [instance("uuid:poison")]
    responses = await asyncio.gather(
        *(lenient_client.post(base, files=multipart(b), headers=OR) for b in bodies)
    )
    statuses = [r.status_code for r in responses]
    assert statuses[:10] == [201] * 10
    assert statuses[10] == 500
    assert writer_of(container).failed_batches >= 1
    async with container.db.read() as conn:
        stored = (
            (await conn.execute(text("SELECT instance_id FROM submissions.submissions ORDER BY instance_id")))
            .scalars()
            .all()
        )
        events = (await conn.execute(text(RECEIVED))).scalar_one()
    assert sorted(stored) == sorted(f"uuid:good{i}" for i in range(10))
    assert events == 10


@pytest.mark.parametrize("settings_overrides", [{"submission_group_commit": False}])
async def test_group_commit_can_be_turned_off(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    assert container.submissions.writer is None
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    responses = await asyncio.gather(
        *(client.post(base, files=multipart(instance(f"uuid:off{i}")), headers=OR) for i in range(5))
    )
    assert [r.status_code for r in responses] == [201] * 5
    assert await scalar(container, "SELECT count(*) FROM submissions.versions") == 5
    assert message(responses[0])[0] == ""


async def test_a_batch_writes_its_submissions_read_model_rows_as_the_consumer_would(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    await subscribe(container)
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    ids = [f"uuid:rm-{i}" for i in range(12)]
    responses = await asyncio.gather(
        *(client.post(base, files=multipart(instance(i), ("p.jpg", b"photo")), headers=OR) for i in ids)
    )
    assert [r.status_code for r in responses] == [201] * 12
    assert writer_of(container).largest > 1
    # Committed with the submissions, before any consumer ran: one root row and two repeat rows
    # each, carrying the id of the submission's own `submission.received` event.
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT r.instance_id, r.event_id, o.id AS received, r.attachments_expected,"
                    " r.attachments_present, r.data->>'/name' AS name,"
                    " (SELECT count(*) FROM aggregation.repeat_rows p"
                    "  WHERE p.submission_id = r.submission_id) AS repeats"
                    " FROM aggregation.rows r JOIN events.outbox o ON o.event = 'submission.received'"
                    " AND (o.payload->>'submissionId')::bigint = r.submission_id"
                )
            )
        ).all()
    assert sorted(r.instance_id for r in rows) == sorted(ids)
    assert all(r.event_id == r.received for r in rows)
    assert {(r.attachments_expected, r.attachments_present, r.name, r.repeats) for r in rows} == {
        (2, 1, "Ada", 2)
    }
    written = await read_model(container)
    # The read model's consumer finds them current and leaves them alone ...
    assert await catch_up(container) >= 12
    async with container.db.read() as conn:
        event_ids = (await conn.execute(text("SELECT event_id FROM aggregation.rows"))).scalars().all()
    assert sorted(event_ids) == sorted(r.event_id for r in rows)
    assert await read_model(container) == written
    # ... and they are exactly what a rebuild from the stored submissions writes.
    assert await container.aggregation.projector.rebuild() == 12
    assert await read_model(container) == written
