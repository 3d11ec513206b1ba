"""An analysis job survives the crash of the server running it: the real `odk-mcp serve` is
killed with SIGKILL while a report job runs, restarted on the same data directory, and the
restarted server notices the job's heartbeat stopped, runs it again and serves the report to
its creator through the same handle.

The embedded PostgreSQL is a separate process and survives the kill, as it does in a real
crash of the application server: the restarted server attaches to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.analytics_forms import XML, submission_xml
from tests.integration.test_server_process import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Server,
    clean_env,
    login,
    odk,
    start_server,
)
from tests.reliability.test_crash import kill_process_group, site, stop_postgres

from odk_mcp.services.analytics.synthetic import FORM_ID, survey, survey_xform

pytestmark = pytest.mark.slow

__all__ = ["site"]  # the fixture, imported for this module's tests

SUBMISSIONS = 40
JOB_ENV = {"ODK_MCP_ANALYTICS_JOB_STALE_SECONDS": "2", "ODK_MCP_ANALYTICS_JOB_POLL_SECONDS": "0.5"}


def poll(
    http: httpx.Client, auth: dict[str, str], handle: str, until: set[str], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"/v1/analytics/jobs/{handle}", headers=auth)
        assert status.status_code == 200, status.text
        if status.json()["status"] in until:
            return dict(status.json())
        time.sleep(0.05)
    raise AssertionError(f"job not {until} after {timeout} s: {status.json()}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "data"
    yield directory
    stop_postgres((directory / "pgdata").resolve())


def test_a_report_job_killed_with_its_server_is_rerun_after_restart(
    tmp_path: Path, site: list[Server], data_dir: Path
) -> None:
    log = tmp_path / "server.log"
    assert odk("migrate", "--data-dir", str(data_dir)).returncode == 0
    server = start_server(data_dir, log, **JOB_ENV)
    site.append(server)
    created = odk(
        "user", "create", "--email", ADMIN_EMAIL, "--admin", "--data-dir", str(data_dir),
        env=clean_env(ODK_MCP_PASSWORD=ADMIN_PASSWORD),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        auth = login(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        pid = http.post("/v1/projects", json={"name": "Crash"}, headers=auth).json()["id"]
        published = http.post(
            f"/v1/projects/{pid}/forms",
            content=survey_xform(),
            params={"publish": "true"},
            headers={**auth, **XML},
        )
        assert published.status_code == 200, published.text
        frame, _ = survey(SUBMISSIONS, enumerators=4, seed=5)
        for row in frame.iter_rows(named=True):
            sent = http.post(
                f"/v1/projects/{pid}/forms/{FORM_ID}/submissions",
                content=submission_xml(row),
                headers={**auth, **XML},
            )
            assert sent.status_code == 200, sent.text
        base = f"/v1/projects/{pid}/forms/{FORM_ID}/analytics"
        deadline = time.monotonic() + 60  # the event worker fills the read model
        while http.get(base + "/timeseries", headers=auth).json()["total"] < frame.height:
            assert time.monotonic() < deadline, "the read model did not catch up"
            time.sleep(0.2)

        started = http.post(base + "/jobs", json={"kind": "report.pdf"}, headers=auth)
        assert started.status_code == 202, started.text
        handle = started.json()["handle"]
        # The first report of a fresh process loads matplotlib and renders ~40 charts: seconds.
        running = poll(http, auth, handle, {"running", "done", "failed"}, 30)
        assert running["status"] == "running", running
    kill_process_group(server)

    restarted = start_server(data_dir, log, **JOB_ENV)
    site.append(restarted)
    with httpx.Client(base_url=restarted.base_url, timeout=120) as http:
        auth = login(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        done = poll(http, auth, handle, {"done", "failed"}, 180)
        assert done["status"] == "done" and done["attempts"] == 2, (done["attempts"], done["progress"])
        report = http.get(f"/v1/analytics/jobs/{handle}/result", headers=auth)
        assert report.status_code == 200 and report.headers["content-type"] == "application/pdf"
        assert report.content.startswith(b"%PDF") and report.content.rstrip().endswith(b"%%EOF")
        assert len(report.content) == done["size"]
