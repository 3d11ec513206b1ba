"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test
(cloned from a migrated template, so each test starts from an empty, current schema), and
the real ASGI app over httpx."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from odk_mcp.bootstrap import Container, build_container
from odk_mcp.gateway import create_app
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.settings import Settings

TEMPLATE = "odk_test_template"
PASSWORD = "correct horse battery staple"
_counter = itertools.count()

SHARED = Path(__file__).resolve().parents[2] / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's tmp_path: pytest prunes old run folders there, which would pull the
    # cluster from under another test run going on at the same time on this machine.
    home = Path(tempfile.mkdtemp(prefix="odk-mcp-test-pg-"))
    server = EmbeddedPostgres(home / "pgdata")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


def _admin_conninfo(server: EmbeddedPostgres) -> str:
    return server.url("postgres")


@pytest.fixture(scope="session")
def template_url(pg_server: EmbeddedPostgres) -> str:
    with psycopg.connect(_admin_conninfo(pg_server), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    url = pg_server.url(TEMPLATE)
    migrations.upgrade(url)
    return url


@pytest.fixture
def database_url(pg_server: EmbeddedPostgres, template_url: str) -> Iterator[str]:
    name = f"odk_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(_admin_conninfo(pg_server), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    yield pg_server.url(name)
    with psycopg.connect(_admin_conninfo(pg_server), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module (or parametrize) to change settings for its tests."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, object]) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "log_json": True,
        "log_level": "WARNING",
        # Cheap argon2 for the many users tests create; the cost itself is tested in
        # tests/api/test_auth.py (hashes made at another cost are upgraded on login).
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 1024,
    }
    values.update(settings_overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def container(settings: Settings, database_url: str) -> AsyncIterator[Container]:
    built = build_container(settings, database_url)
    yield built
    await built.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@dataclass
class Person:
    """A user created for a test, logged in, with a ready Authorization header."""

    id: int
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeUser = Callable[..., Awaitable[Person]]


@pytest.fixture
def make_user(container: Container, client: httpx.AsyncClient) -> MakeUser:
    """Create a user through the facade (as the system), optionally admin, and log in over HTTP."""

    async def make(email: str | None = None, admin: bool = False, password: str = PASSWORD) -> Person:
        email = email or f"user{next(_counter)}@example.org"
        view = await container.users.accounts.create_user(SYSTEM, email, password, None)
        if admin:
            await container.users.accounts.promote(SYSTEM, email)
        response = await client.post("/v1/sessions", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return Person(id=view.id, email=email, token=response.json()["token"])

    return make


@pytest.fixture
async def admin(make_user: MakeUser) -> Person:
    return await make_user("admin@example.org", admin=True)


def require_shared(reason: str) -> Path:
    """The read-only ../shared material; skip outside CI when it is absent, fail in CI."""
    if SHARED.is_dir():
        return SHARED
    if in_ci():
        pytest.fail(f"../shared is missing in CI: {reason}")
    pytest.skip(f"../shared is not present (a user's clone has none): {reason}")
