"""The scaled-out wiring: the same app over an external PostgreSQL given by a URL.

Set ODK_MCP_TEST_EXTERNAL_DATABASE_URL=postgresql://user:pass@host:port/db to run it
(.ci/run starts one). The test WIPES that database's odk-mcp schemas first, so point it at
a throwaway database. Without the variable it is skipped, except in CI where it fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from psycopg import sql
from tests.conftest import in_ci

from odk_mcp.bootstrap import Container, open_container
from odk_mcp.gateway import create_app
from odk_mcp.infra import migrations
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.kernel.db import async_url
from odk_mcp.settings import Settings

VARIABLE = "ODK_MCP_TEST_EXTERNAL_DATABASE_URL"
EMAIL = "external-admin@example.org"
PASSWORD = "an external passphrase"


@pytest.fixture(scope="module")
def external_url() -> str:
    url = os.environ.get(VARIABLE, "").strip()
    if url:
        return url
    reason = f"{VARIABLE} is not set: no external PostgreSQL to test against (.ci/run starts one)"
    if in_ci():
        pytest.fail(f"CI must provide an external PostgreSQL: {reason}")
    pytest.skip(reason)


def libpq_url(url: str) -> str:
    """The URL as psycopg takes it (no SQLAlchemy driver suffix)."""
    return "postgresql://" + async_url(url).removeprefix("postgresql+psycopg://")


def wipe(url: str) -> None:
    """Drop every schema our migrations made (all schemas the role owns but `public`) and
    Alembic's version table, so the migrations run from nothing."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        owned = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles"
            " WHERE rolname = current_user) AND nspname <> 'public' AND nspname NOT LIKE 'pg\\_%'"
        ).fetchall()
        for schema in {"events", "users", "forms"} | {row[0] for row in owned}:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute("DROP TABLE IF EXISTS public.alembic_version")


@pytest.fixture
async def external_container(external_url: str) -> AsyncIterator[Container]:
    wipe(external_url)
    assert migrations.pending(external_url), "the wiped database should need every migration"
    migrations.upgrade(external_url)
    assert migrations.pending(external_url) == set()
    settings = Settings(database_url=external_url, log_level="WARNING")  # type: ignore[arg-type]
    # open_container migrates again on start: on a current database that is a no-op.
    async with open_container(settings) as container:
        yield container


async def test_external_database_serves_users_and_projects(
    external_container: Container, external_url: str
) -> None:
    assert not external_container.settings.embedded
    await external_container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, "External admin")
    await external_container.users.accounts.promote(SYSTEM, EMAIL)

    app = create_app(container=external_container)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        session = await http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
        assert session.status_code == 200, session.text
        auth = {"Authorization": f"Bearer {session.json()['token']}"}

        me = await http.get("/v1/users/current", headers=auth)
        assert me.status_code == 200
        assert me.json()["email"] == EMAIL

        created = await http.post("/v1/projects", headers=auth, json={"name": "On the external server"})
        assert created.status_code == 200, created.text
        project = created.json()

        read = await http.get(f"/v1/projects/{project['id']}", headers=auth)
        assert read.status_code == 200
        assert read.json()["name"] == "On the external server"
        assert read.json()["id"] == project["id"]
        listed = await http.get("/v1/projects", headers=auth)
        assert [p["name"] for p in listed.json()] == ["On the external server"]

    # The rows are really in the external database, not somewhere else.
    with psycopg.connect(libpq_url(external_url)) as conn:
        names = conn.execute("SELECT name FROM forms.projects").fetchall()
        emails = conn.execute("SELECT email FROM users.actors WHERE email IS NOT NULL").fetchall()
    assert names == [("On the external server",)]
    assert (EMAIL,) in emails
