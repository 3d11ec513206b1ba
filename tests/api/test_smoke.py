"""The app answers over real HTTP semantics with a real database behind it."""

from __future__ import annotations

import httpx
from tests.conftest import Person


async def test_health_and_readiness_report_ok(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_admin_logs_in_and_reads_current_user_with_verbs(
    client: httpx.AsyncClient, admin: Person
) -> None:
    response = await client.get("/v1/users/current", headers={**admin.auth, "X-Extended-Metadata": "true"})
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "admin@example.org"
    assert "user.create" in body["verbs"]


async def test_unknown_route_is_404_with_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == 404.1
