"""Export jobs on real PostgreSQL: a handle that reports progress and downloads the file, bound
to its creator, expiring; a job interrupted by a crash is restarted, and one interrupted too
often is failed with a reason, never left running."""

from __future__ import annotations

import io
import os
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from tests.api.test_exports import ROOT_HEADER, setup_form
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container


async def _start(client: httpx.AsyncClient, admin: Person, pid: int, body: object) -> httpx.Response:
    return await client.post(
        f"/v1/projects/{pid}/forms/household_survey/exports", json=body, headers=admin.auth
    )


async def test_job_lifecycle_progress_download_and_owner(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid = await setup_form(client, container, admin)
    started = await _start(client, admin, pid, {"format": "csv.zip", "options": {"attachments": False}})
    assert started.status_code == 202, started.text
    job = started.json()
    handle = job["handle"]
    assert len(handle) >= 40 and job["status"] == "queued" and job["progress"] == {"rows": 0, "total": 2}
    assert job["links"] == {"status": f"/v1/exports/{handle}", "file": f"/v1/exports/{handle}/file"}

    early = await client.get(f"/v1/exports/{handle}/file", headers=admin.auth)
    assert early.status_code == 409 and early.json()["code"] == 409.31

    other = await make_user()
    assert (await client.get(f"/v1/exports/{handle}", headers=other.auth)).status_code == 404
    assert (await client.get(f"/v1/exports/{handle}/file", headers=other.auth)).status_code == 404
    assert (await client.get(f"/v1/exports/{handle}")).status_code == 401

    assert await container.exports.jobs.run_one()
    status = (await client.get(f"/v1/exports/{handle}", headers=admin.auth)).json()
    assert status["status"] == "done" and status["progress"] == {"rows": 2, "total": 2}
    assert status["fileName"] == "household_survey.csv.zip" and status["attempts"] == 1

    download = await client.get(f"/v1/exports/{handle}/file", headers=admin.auth)
    assert download.status_code == 200 and int(download.headers["content-length"]) == status["size"]
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert archive.read("household_survey.csv").decode().splitlines()[0] == ROOT_HEADER
    assert len(archive.read("household_survey.csv").decode().splitlines()) == 3

    # Expiry: the file is deleted and the job says so.
    assert await container.exports.jobs.sweep(now=datetime.now(UTC) + timedelta(days=2)) == 1
    assert (await client.get(f"/v1/exports/{handle}", headers=admin.auth)).json()["status"] == "expired"
    gone = await client.get(f"/v1/exports/{handle}/file", headers=admin.auth)
    assert gone.status_code == 404
    assert not container.exports.jobs.path(status["id"]).exists()


async def test_a_job_interrupted_by_a_crash_is_restarted(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    handle = (await _start(client, admin, pid, {"format": "xlsx"})).json()["handle"]
    jobs = container.exports.jobs
    claimed = await jobs.claim()  # a server claims it, then dies before finishing
    assert claimed is not None and claimed["attempts"] == 1
    assert await jobs.claim() is None  # its heartbeat is fresh: nobody steals it
    async with container.db.transaction() as conn:
        await conn.execute(
            text("UPDATE aggregation.export_jobs SET heartbeat_at = now() - interval '1 hour'")
        )
    assert await jobs.run_one()
    status = (await client.get(f"/v1/exports/{handle}", headers=admin.auth)).json()
    assert status["status"] == "done" and status["attempts"] == 2
    assert (await client.get(f"/v1/exports/{handle}/file", headers=admin.auth)).status_code == 200


async def test_a_job_interrupted_too_often_fails_clearly(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    handle = (await _start(client, admin, pid, {"format": "parquet"})).json()["handle"]
    async with container.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE aggregation.export_jobs SET status = 'running', attempts = 3,"
                " heartbeat_at = now() - interval '1 hour'"
            )
        )
    assert not await container.exports.jobs.run_one()
    status = (await client.get(f"/v1/exports/{handle}", headers=admin.auth)).json()
    assert status["status"] == "failed" and status["error"]["code"] == 500.1
    assert "interrupted" in status["error"]["message"]
    failed = await client.get(f"/v1/exports/{handle}/file", headers=admin.auth)
    assert failed.status_code == 409 and failed.json()["details"]["status"] == "failed"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"format": "exe"}, 400.8),
        ({}, 400.2),
        ({"format": "csv", "colour": "red"}, 400.4),
        ({"format": "csv", "options": {"nope": True}}, 400.4),
        ({"format": "csv", "options": ["x"]}, 400.11),
        ({"format": "csv", "options": {"$filter": "age gt"}}, 400),
        ([1, 2], 400.1),
    ],
)
async def test_bad_job_requests_are_refused_and_queue_nothing(
    client: httpx.AsyncClient, container: Container, admin: Person, body: object, code: float
) -> None:
    pid = await setup_form(client, container, admin)
    response = await _start(client, admin, pid, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code or int(response.json()["code"]) == code
    async with container.db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM aggregation.export_jobs"))).scalar_one() == 0


async def test_job_permissions_and_unknown_handles(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid = await setup_form(client, container, admin)
    collector = await make_user()
    await client.post(f"/v1/projects/{pid}/assignments/formfill/{collector.id}", headers=admin.auth)
    denied = await _start(client, collector, pid, {"format": "csv"})
    assert denied.status_code == 403
    for handle in ("A" * 64, "..%2F..%2Fetc%2Fpasswd", "x"):
        assert (await client.get(f"/v1/exports/{handle}", headers=admin.auth)).status_code == 404


async def test_exports_are_audited(client: httpx.AsyncClient, container: Container, admin: Person) -> None:
    pid = await setup_form(client, container, admin)
    await client.get(f"/v1/projects/{pid}/forms/household_survey/submissions.csv", headers=admin.auth)
    await _start(client, admin, pid, {"format": "xlsx", "options": {"groupPaths": False}})
    audits = await client.get("/v1/audits", params={"action": "form.submission.export"}, headers=admin.auth)
    assert audits.status_code == 200, audits.text
    details = [a["details"] for a in audits.json()]
    assert {d["format"] for d in details} == {"csv", "xlsx"}
    assert any("job" in d and d["options"]["groupPaths"] is False for d in details)


async def test_sweep_removes_files_a_crash_left_behind(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    jobs = container.exports.jobs
    spool = container.exports.spool
    spool.mkdir(parents=True, exist_ok=True)
    old, fresh = spool / "old.xlsx", spool / "fresh.xlsx"
    part = jobs.path("00000000-0000-0000-0000-000000000000").with_suffix(".part")
    for path in (old, fresh, part):
        path.write_bytes(b"x")
    long_ago = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    os.utime(old, (long_ago, long_ago))
    os.utime(part, (long_ago, long_ago))
    await jobs.sweep()
    assert not old.exists() and not part.exists() and fresh.exists()
