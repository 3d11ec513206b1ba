"""The real `odk-mcp` command as an operator runs it: `serve` in its own process on the
embedded PostgreSQL, `user create` both non-interactive ways, login and a project over
real HTTP, SIGTERM, and a restart that finds everything where it was left."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from odk_mcp import __version__

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "a long passphrase for the admin"
COLLEAGUE_EMAIL = "colleague@example.org"
COLLEAGUE_PASSWORD = "piped in through stdin"
READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any odk-mcp setting of the test runner (an external database
    URL, a port, a password), so that only the command line decides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODK_MCP_") and k != "DATABASE_URL"}
    env.update({"ODK_MCP_LOG_LEVEL": "WARNING", **extra})
    return env


def odk(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "odk_mcp", *args],
        env=env if env is not None else clean_env(),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Running postgres processes serving `pgdata`: the postmaster and its children."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(proc)
            with contextlib.suppress(psutil.NoSuchProcess):
                found.extend(proc.children(recursive=True))
    return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def start_server(data_dir: Path, log: Path, **env: str) -> Server:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "odk_mcp", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=clean_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"odk-mcp serve exited with {process.returncode} before ready:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    pytest.fail(f"odk-mcp serve not ready after {READY_TIMEOUT} s:\n{server.log_text()}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Every server a test starts; any still running at the end is stopped (then killed),
    and so is any PostgreSQL left behind in the test's directory."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(tmp_path.resolve()) in " ".join(
            proc.info["cmdline"] or []
        ):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()


def login(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = http.post("/v1/sessions", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_version_prints_the_package_version() -> None:
    result = odk("version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_serve_users_projects_sigterm_and_restart_keep_everything(
    tmp_path: Path, servers: list[Server]
) -> None:
    data_dir = tmp_path / "data"
    pgdata = (data_dir / "pgdata").resolve()
    log = tmp_path / "server.log"

    # `migrate` on a fresh data directory creates the cluster, migrates, and lets go of it.
    migrated = odk("migrate", "--data-dir", str(data_dir))
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    assert (pgdata / "PG_VERSION").is_file()
    assert postgres_processes(pgdata) == [], "migrate left PostgreSQL running"

    server = start_server(data_dir, log)
    servers.append(server)
    postmaster = postgres_processes(pgdata)
    assert postmaster, "the server is ready but no PostgreSQL runs for its data directory"

    # The first administrator, password from the environment, while the server runs.
    created = odk(
        "user", "create", "--email", ADMIN_EMAIL, "--admin", "--data-dir", str(data_dir),
        env=clean_env(ODK_MCP_PASSWORD=ADMIN_PASSWORD),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert ADMIN_EMAIL in created.stdout
    assert "administrator" in created.stdout

    # A second user, password piped through stdin (no variable set).
    piped = odk(
        "user", "create", "--email", COLLEAGUE_EMAIL, "--data-dir", str(data_dir),
        stdin=f"{COLLEAGUE_PASSWORD}\n",
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert COLLEAGUE_EMAIL in piped.stdout
    assert "administrator" not in piped.stdout

    # A password below the policy: refused with the reason, no traceback, nothing created.
    weak = odk(
        "user", "create", "--email", "weak@example.org", "--data-dir", str(data_dir),
        env=clean_env(ODK_MCP_PASSWORD="short"),
    )  # fmt: skip
    assert weak.returncode != 0
    assert "password" in weak.stderr.lower()
    assert "at least" in weak.stderr
    assert "Traceback" not in weak.stderr + weak.stdout

    # The CLI commands attached to the server's PostgreSQL and let go without stopping it.
    assert all(p.is_running() for p in postmaster)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get("/readyz").json() == {"status": "ready"}
        admin = login(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        me = http.get("/v1/users/current", headers={**admin, "X-Extended-Metadata": "true"})
        assert me.status_code == 200
        assert me.json()["email"] == ADMIN_EMAIL
        assert "project.create" in me.json()["verbs"]

        # The piped password is exactly what was typed (the newline is not part of it).
        colleague = login(http, COLLEAGUE_EMAIL, COLLEAGUE_PASSWORD)
        assert http.post("/v1/projects", headers=colleague, json={"name": "Not mine"}).status_code == 403

        refused = http.post("/v1/sessions", json={"email": "weak@example.org", "password": "short"})
        assert refused.status_code == 401

        project = http.post("/v1/projects", headers=admin, json={"name": "Household survey"})
        assert project.status_code == 200, project.text
        project_id = project.json()["id"]

        # Load balancers probe with HEAD; every response carries exactly one Date header,
        # OpenRosa ones included (they set their own).
        probe = http.head("/healthz")
        assert probe.status_code == 200
        openrosa = http.head(f"/v1/projects/{project_id}/submission", headers=admin)
        assert openrosa.status_code == 204
        for response in (probe, openrosa, me):
            assert len(response.headers.get_list("date")) == 1, response.headers

    # SIGTERM: a clean exit, PostgreSQL stopped with it.
    assert server.stop() == 0, server.log_text()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in postmaster)
    assert postgres_processes(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists(), "PostgreSQL did not shut down cleanly"

    # A restart on the same data directory finds the users and the project.
    again = start_server(data_dir, log)
    servers.append(again)
    with httpx.Client(base_url=again.base_url, timeout=10) as http:
        admin = login(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        login(http, COLLEAGUE_EMAIL, COLLEAGUE_PASSWORD)
        read = http.get(f"/v1/projects/{project_id}", headers=admin)
        assert read.status_code == 200
        assert read.json()["name"] == "Household survey"
        users = http.get("/v1/users", headers=admin)
        assert users.status_code == 200
        assert {u["email"] for u in users.json()} == {ADMIN_EMAIL, COLLEAGUE_EMAIL}
    assert again.stop() == 0, again.log_text()
    assert postgres_processes(pgdata) == []

    # `migrate` on the existing data directory: nothing to do, still succeeds.
    rerun = odk("migrate", "--data-dir", str(data_dir))
    assert rerun.returncode == 0, rerun.stderr
    assert postgres_processes(pgdata) == []
