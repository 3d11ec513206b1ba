"""pyODK (the official Python client, pinned in the dev extra) against the real server over
real HTTP: uvicorn on a free loopback port in a background thread, on its own database
cloned from the migrated template. pyODK is configured the way its users do it, with a
TOML config file and a token cache file."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
import httpx
import psycopg
import pytest
import uvicorn
from pyodk._endpoints.project_app_users import ProjectAppUser, ProjectAppUserService
from pyodk._endpoints.projects import Project
from pyodk._utils import config as pyodk_config
from pyodk.client import Client
from pyodk.errors import PyODKError
from tests.conftest import TEMPLATE

from odk_mcp.bootstrap import build_container
from odk_mcp.gateway import create_app
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.settings import Settings

ADMIN_EMAIL = "pyodk-admin@example.org"
ADMIN_PASSWORD = "pyodk talks to odk-mcp"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Central:
    """The running server: its base URL and an admin to drive it with."""

    base_url: str
    admin_auth: dict[str, str]

    def create_project(self, name: str) -> int:
        response = httpx.post(f"{self.base_url}/v1/projects", headers=self.admin_auth, json={"name": name})
        assert response.status_code == 200, response.text
        return int(response.json()["id"])


@pytest.fixture(scope="module")
def central(
    pg_server: EmbeddedPostgres, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Central]:
    name = f"odk_pyodk_{os.getpid()}"
    admin_url = pg_server.url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    url = pg_server.url(name)
    port = free_port()
    settings = Settings(
        database_url=url,  # type: ignore[arg-type]
        data_dir=tmp_path_factory.mktemp("pyodk-data"),
        public_url=f"http://127.0.0.1:{port}",
        log_level="WARNING",
    )

    async def create_admin() -> None:
        container = build_container(settings, url)
        try:
            await container.users.accounts.create_user(SYSTEM, ADMIN_EMAIL, ADMIN_PASSWORD, "pyODK admin")
            await container.users.accounts.promote(SYSTEM, ADMIN_EMAIL)
        finally:
            await container.db.dispose()

    anyio.run(create_admin)

    # The app opens its own container in the server thread's event loop (lifespan).
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="odk-mcp-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{port}"
    login = httpx.post(f"{base_url}/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    try:
        yield Central(base_url, {"Authorization": f"Bearer {login.json()['token']}"})
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_config(
    path: Path, central: Central, project_id: int | None = None, password: str = ADMIN_PASSWORD
) -> Path:
    # JSON strings are valid TOML basic strings.
    lines = [
        "[central]",
        f"base_url = {json.dumps(central.base_url)}",
        f"username = {json.dumps(ADMIN_EMAIL)}",
        f"password = {json.dumps(password)}",
    ]
    if project_id is not None:
        lines.append(f"default_project_id = {project_id}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config_path(tmp_path: Path, central: Central) -> Path:
    return write_config(tmp_path / "pyodk_config.toml", central)


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "pyodk_cache.toml"


def bearer(client: Client) -> str:
    header = str(client.session.headers["Authorization"])
    assert header.startswith("Bearer ")
    return header.removeprefix("Bearer ")


def test_open_logs_in_with_a_session_and_caches_the_token(
    central: Central, config_path: Path, cache_path: Path
) -> None:
    client = Client(config_path=config_path, cache_path=cache_path).open()
    try:
        token = bearer(client)
        assert pyodk_config.read_cache_token(cache_path) == token
        me = client.get("users/current")
        assert me.status_code == 200
        assert me.json()["email"] == ADMIN_EMAIL
    finally:
        client.close()


def test_wrong_password_fails_to_open(central: Central, tmp_path: Path, cache_path: Path) -> None:
    config = write_config(tmp_path / "bad.toml", central, password="not the right password")
    with pytest.raises(PyODKError, match="login request failed"):
        Client(config_path=config, cache_path=cache_path).open()
    assert not cache_path.exists()


def test_cached_token_is_verified_and_reused_then_replaced_once_revoked(
    central: Central, config_path: Path, cache_path: Path
) -> None:
    with Client(config_path=config_path, cache_path=cache_path) as first:
        token = bearer(first)

    # A second client finds the token in the cache, checks it (GET /v1/users/current) and keeps it.
    with Client(config_path=config_path, cache_path=cache_path) as second:
        assert bearer(second) == token
        assert second.get("users/current").status_code == 200
        # Log that session out: the cached token is no longer valid.
        assert second.delete("sessions/current").status_code == 200
    assert pyodk_config.read_cache_token(cache_path) == token

    # The check now fails, so pyODK logs in again and caches the new token.
    with Client(config_path=config_path, cache_path=cache_path) as third:
        renewed = bearer(third)
        assert renewed != token
        assert third.get("users/current").status_code == 200
    assert pyodk_config.read_cache_token(cache_path) == renewed


def test_projects_list_and_get_parse_into_pyodk_models(
    central: Central, tmp_path: Path, cache_path: Path
) -> None:
    first = central.create_project("pyODK household survey")
    second = central.create_project("pyODK market prices")
    config = write_config(tmp_path / "with_project.toml", central, project_id=second)

    with Client(config_path=config, cache_path=cache_path) as client:
        projects = client.projects.list()
        assert all(isinstance(p, Project) for p in projects)
        by_id = {p.id: p for p in projects}
        assert by_id[first].name == "pyODK household survey"
        assert by_id[second].name == "pyODK market prices"

        project = client.projects.get(first)
        assert isinstance(project, Project)
        assert (project.id, project.name) == (first, "pyODK household survey")
        assert isinstance(project.createdAt, datetime)
        assert project.createdAt.tzinfo is not None
        assert project.archived in (None, False)

        # No id given: the config's default_project_id.
        assert client.projects.get().id == second

        with pytest.raises(PyODKError, match="404"):
            client.projects.get(999_999)


def test_app_users_create_and_list(central: Central, config_path: Path, cache_path: Path) -> None:
    project_id = central.create_project("pyODK devices")

    with Client(config_path=config_path, cache_path=cache_path, project_id=project_id) as client:
        app_users = ProjectAppUserService(session=client.session, default_project_id=client.project_id)
        assert app_users.list() == []

        tablet = app_users.create(display_name="Tablet 1")
        assert isinstance(tablet, ProjectAppUser)
        assert tablet.projectId == project_id
        assert tablet.displayName == "Tablet 1"
        assert tablet.type == "field_key"
        assert tablet.token
        assert tablet.deletedAt is None

        listed = app_users.list()
        assert all(isinstance(u, ProjectAppUser) for u in listed)
        assert [(u.id, u.projectId, u.displayName) for u in listed] == [(tablet.id, project_id, "Tablet 1")]


def test_create_app_users_creates_only_missing_names(
    central: Central, config_path: Path, cache_path: Path
) -> None:
    project_id = central.create_project("pyODK rerun")
    with Client(config_path=config_path, cache_path=cache_path, project_id=project_id) as client:
        first = list(client.projects.create_app_users(display_names=["Tablet 1"]))
        assert [u.displayName for u in first] == ["Tablet 1"]
        # Re-running a provisioning script: only the new name is created.
        again = list(client.projects.create_app_users(display_names=["Tablet 1", "Tablet 2"]))
        assert [u.displayName for u in again] == ["Tablet 2"]
        listed = ProjectAppUserService(session=client.session, default_project_id=project_id).list()
        assert sorted(u.displayName for u in listed) == ["Tablet 1", "Tablet 2"]
