"""Analysis jobs over real HTTP and PostgreSQL: full scans, enumerator tables and reports run
as jobs whose handle reports progress and returns the result; small forms still answer at
once; the handle is its creator's and re-checks their rights; a job a crash interrupted is
rerun (its findings stored once), one interrupted too often fails clearly, results expire."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.analytics_forms import FORM_ID
from tests.api.test_analytics import base, loaded
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.tokens import hash_token, new_token
from odk_mcp.services.analytics.adapters import jobs_store

ASYNC = {"Prefer": "respond-async"}


async def finished(client: httpx.AsyncClient, person: Person, handle: str) -> dict[str, Any]:
    """Poll the job's status until it is done or failed."""
    for _ in range(1200):
        status = await client.get(f"/v1/analytics/jobs/{handle}", headers=person.auth)
        assert status.status_code == 200, status.text
        if status.json()["status"] in ("done", "failed"):
            return dict(status.json())
        await asyncio.sleep(0.1)
    raise AssertionError("the job did not finish")


async def queued(container: Container, person: Person, pid: int, kind: str, form: str = FORM_ID) -> str:
    """A job waiting in the queue, as a request leaves it when this server has no free slot."""
    handle = new_token()
    async with container.db.transaction() as conn:
        await jobs_store.insert(
            conn, uuid.uuid4(), hash_token(handle), person.id, pid, form, kind, timedelta(hours=1)
        )
    return handle


async def findings_stored(container: Container) -> int:
    async with container.db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM analytics.findings"))).scalar_one())


async def test_small_forms_answer_at_once_and_respond_async_gives_a_handle_with_progress(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, frame = await loaded(client, container, admin, n=60)
    direct = await client.post(base(pid) + "/quality", headers=admin.auth)
    assert direct.status_code == 200, direct.text
    assert direct.json()["submissions"] == frame.height and direct.json()["findings"] >= 0

    started = await client.post(base(pid) + "/quality", headers={**admin.auth, **ASYNC})
    assert started.status_code == 202, started.text
    job = started.json()
    handle = job["handle"]
    assert len(handle) >= 40 and job["kind"] == "quality" and job["status"] in ("queued", "running")
    assert started.headers["location"] == f"/v1/analytics/jobs/{handle}" == job["links"]["status"]
    assert job["links"]["result"] == f"/v1/analytics/jobs/{handle}/result"
    assert set(job["progress"]) == {"stage", "done", "total"}

    status = await finished(client, admin, handle)
    assert status["status"] == "done" and status["attempts"] == 1 and "handle" not in status
    assert status["progress"]["stage"] == "done"
    result = await client.get(f"/v1/analytics/jobs/{handle}/result", headers=admin.auth)
    assert result.status_code == 200 and result.json() == direct.json()
    listed = (await client.get(base(pid) + "/quality", headers=admin.auth)).json()
    assert listed["total"] == result.json()["findings"] == await findings_stored(container)


async def test_every_kind_runs_as_a_job_and_returns_what_the_direct_route_returns(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, frame = await loaded(client, container, admin, n=60)
    handles = {}
    container.analytics.jobs.start()  # as `serve` does: the third job waits for a free slot
    try:
        for kind in ("enumerators", "report.html", "report.pdf"):
            started = await client.post(base(pid) + "/jobs", json={"kind": kind}, headers=admin.auth)
            assert started.status_code == 202, started.text
            handles[kind] = started.json()["handle"]
        assert started.json()["status"] == "queued"  # two per process at once (the default)
        for handle in handles.values():
            assert (await finished(client, admin, handle))["status"] == "done"
    finally:
        await container.analytics.jobs.stop()

    table = await client.get(f"/v1/analytics/jobs/{handles['enumerators']}/result", headers=admin.auth)
    direct = await client.get(base(pid) + "/enumerators", headers=admin.auth)
    assert table.status_code == direct.status_code == 200
    assert table.json() == direct.json()
    assert sum(row["interviews"] for row in table.json()["enumerators"]) == frame.height

    html = await client.get(f"/v1/analytics/jobs/{handles['report.html']}/result", headers=admin.auth)
    assert html.headers["content-type"].startswith("text/html")
    assert html.text.count("data:image/png;base64,") >= 10
    pdf = await client.get(f"/v1/analytics/jobs/{handles['report.pdf']}/result", headers=admin.auth)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == f'attachment; filename="{FORM_ID}-report.pdf"'
    status = (await client.get(f"/v1/analytics/jobs/{handles['report.pdf']}", headers=admin.auth)).json()
    assert status["size"] == len(pdf.content)


@pytest.mark.parametrize("settings_overrides", [{"analytics_wait_seconds": 0}])
async def test_past_the_wait_the_direct_routes_answer_202_with_the_handle(
    client: httpx.AsyncClient, container: Container, admin: Person, settings_overrides: dict[str, object]
) -> None:
    pid, _ = await loaded(client, container, admin, n=30)
    for method, path in (("POST", "/quality"), ("GET", "/enumerators"), ("GET", "/report.html")):
        answer = await client.request(method, base(pid) + path, headers=admin.auth)
        assert answer.status_code == 202, (path, answer.text)
        assert answer.headers["location"] == answer.json()["links"]["status"]
        assert (await finished(client, admin, answer.json()["handle"]))["status"] == "done"


def test_prefer_header_sets_the_wait() -> None:
    from odk_mcp.services.analytics.api.jobs import wait_preferred

    assert wait_preferred(None, 30) == 30
    assert wait_preferred("respond-async", 30) == 0
    assert wait_preferred("handling=lenient, respond-async; x=1", 30) == 0
    assert wait_preferred("wait=5", 30) == 5
    assert wait_preferred("wait=500", 30) == 30  # never longer than the server allows
    assert wait_preferred("wait=soon, return=minimal", 30) == 30  # ignored, as RFC 7240 says


async def test_handles_belong_to_their_creator_and_rights_are_checked_again(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid, _ = await loaded(client, container, admin, n=30)
    viewer = await make_user()
    await client.post(f"/v1/projects/{pid}/assignments/viewer/{viewer.id}", headers=admin.auth)
    started = await client.post(base(pid) + "/jobs", json={"kind": "enumerators"}, headers=viewer.auth)
    assert started.status_code == 202, started.text
    handle = started.json()["handle"]
    assert (await finished(client, viewer, handle))["status"] == "done"

    stranger = await make_user()
    for path in (f"/v1/analytics/jobs/{handle}", f"/v1/analytics/jobs/{handle}/result"):
        assert (await client.get(path, headers=stranger.auth)).status_code == 404
        assert (await client.get(path, headers=admin.auth)).status_code == 404  # not even an admin's
        assert (await client.get(path)).status_code == 401
    unknown = await client.get("/v1/analytics/jobs/" + "x" * 64, headers=viewer.auth)
    assert unknown.status_code == 404
    traversal = await client.get("/v1/analytics/jobs/..%2F..%2Fetc%2Fpasswd", headers=viewer.auth)
    assert traversal.status_code in (404, 400, 422)

    # The viewer loses the project: the handle no longer opens anything.
    await client.delete(f"/v1/projects/{pid}/assignments/viewer/{viewer.id}", headers=admin.auth)
    for path in (f"/v1/analytics/jobs/{handle}", f"/v1/analytics/jobs/{handle}/result"):
        denied = await client.get(path, headers=viewer.auth)
        assert denied.status_code == 403 and denied.json()["code"] == 403.1


async def test_bad_job_requests_are_refused_and_queue_nothing(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid, _ = await loaded(client, container, admin, n=10)
    stranger = await make_user()
    cases = [
        (base(pid) + "/jobs", {"kind": "exe"}, admin, 400),
        (base(pid) + "/jobs", {"kind": "quality", "colour": "red"}, admin, 400),
        (base(pid) + "/jobs", {}, admin, 400),
        (f"/v1/projects/{pid}/forms/nope/analytics/jobs", {"kind": "quality"}, admin, 404),
        (base(pid) + "/jobs", {"kind": "quality"}, stranger, 403),
    ]
    for path, body, person, status in cases:
        refused = await client.post(path, json=body, headers=person.auth)
        assert refused.status_code == status, (body, refused.text)
        assert isinstance(refused.json()["code"], float | int)
    assert (await client.post(base(pid) + "/jobs", json={"kind": "quality"})).status_code == 401
    wrong_kind = await client.post(base(pid) + "/jobs", json={"kind": "exe"}, headers=admin.auth)
    assert wrong_kind.json()["code"] == 400.8
    async with container.db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM analytics.jobs"))).scalar_one() == 0


async def test_a_clean_stop_never_leaves_a_job_running(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await loaded(client, container, admin, n=60)
    handle = (await client.post(base(pid) + "/quality", headers={**admin.auth, **ASYNC})).json()["handle"]
    await container.analytics.jobs.stop()
    status = (await client.get(f"/v1/analytics/jobs/{handle}", headers=admin.auth)).json()
    # Interrupted: back in the queue, the start not counted; or it finished just before.
    assert (status["status"], status["attempts"]) in (("queued", 0), ("done", 1)), status


async def test_a_job_crashed_while_running_is_rerun_and_stores_its_findings_once(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await loaded(client, container, admin, n=60)
    jobs = container.analytics.jobs
    handle = await queued(container, admin, pid, "quality")
    early = await client.get(f"/v1/analytics/jobs/{handle}/result", headers=admin.auth)
    assert early.status_code == 409 and early.json()["code"] == 409.32
    assert early.json()["details"]["status"] == "queued"

    claimed = await jobs.claim()  # a server claims it, then dies without finishing
    assert claimed is not None and claimed["attempts"] == 1 and claimed["status"] == "running"
    assert await jobs.claim() is None  # its heartbeat is fresh: nobody steals it
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE analytics.jobs SET heartbeat_at = now() - interval '1 hour'"))
    assert await jobs.run_one()
    status = (await client.get(f"/v1/analytics/jobs/{handle}", headers=admin.auth)).json()
    assert status["status"] == "done" and status["attempts"] == 2
    result = (await client.get(f"/v1/analytics/jobs/{handle}/result", headers=admin.auth)).json()
    assert result["findings"] == await findings_stored(container)

    # The dead attempt coming back to life cannot record anything over the rerun's outcome.
    async with container.db.transaction() as conn:
        late = await jobs_store.finish(
            conn, claimed["id"], 1, "failed", timedelta(hours=1), error={"code": 500.1, "message": "x"}
        )
    assert late is False
    assert (await client.get(f"/v1/analytics/jobs/{handle}", headers=admin.auth)).json()["status"] == "done"


async def test_a_job_interrupted_too_often_fails_clearly_and_results_expire(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await loaded(client, container, admin, n=30)
    jobs = container.analytics.jobs
    handle = await queued(container, admin, pid, "report.html")
    async with container.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE analytics.jobs SET status = 'running', attempts = 3,"
                " heartbeat_at = now() - interval '1 hour'"
            )
        )
    assert not await jobs.run_one()
    status = (await client.get(f"/v1/analytics/jobs/{handle}", headers=admin.auth)).json()
    assert status["status"] == "failed" and status["error"]["code"] == 500.1
    assert "interrupted" in status["error"]["message"]
    failed = await client.get(f"/v1/analytics/jobs/{handle}/result", headers=admin.auth)
    assert failed.status_code == 409 and failed.json()["details"]["status"] == "failed"

    done = (await client.post(base(pid) + "/jobs", json={"kind": "enumerators"}, headers=admin.auth)).json()
    assert (await finished(client, admin, done["handle"]))["status"] == "done"
    assert await jobs.sweep(now=datetime.now(UTC) + timedelta(days=2)) == 2
    for expired in (handle, done["handle"]):
        view = await client.get(f"/v1/analytics/jobs/{expired}", headers=admin.auth)
        assert view.json()["status"] == "expired"
        gone = await client.get(f"/v1/analytics/jobs/{expired}/result", headers=admin.auth)
        assert gone.status_code == 404
    async with container.db.read() as conn:
        kept = await conn.execute(
            text("SELECT count(*) FROM analytics.jobs WHERE body IS NOT NULL OR result IS NOT NULL")
        )
        assert kept.scalar_one() == 0


async def test_the_runner_picks_up_queued_jobs_and_a_failed_analysis_records_its_problem(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await loaded(client, container, admin, n=30)
    jobs = container.analytics.jobs
    handle = await queued(container, admin, pid, "enumerators")
    jobs.start()
    try:
        assert (await finished(client, admin, handle))["status"] == "done"
    finally:
        await jobs.stop()

    # The form is gone by the time the job runs: it fails with the problem the form lookup gave.
    vanished = await queued(container, admin, pid, "quality", form="vanished")
    assert await jobs.run_one()
    assert (await client.get(f"/v1/analytics/jobs/{vanished}", headers=admin.auth)).status_code == 404
    async with container.db.read() as conn:
        found = await conn.execute(
            text("SELECT status, error FROM analytics.jobs WHERE xml_form_id = 'vanished'")
        )
        status, error = found.one()
    assert status == "failed" and error["code"] == 404.1
