"""Forwarded headers count only from trusted proxies: a client talking plain HTTP cannot claim
HTTPS to send a Basic password, and login throttling sees the real client behind a proxy."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.conftest import PASSWORD, Person

from odk_mcp.bootstrap import Container
from odk_mcp.gateway import create_app


@pytest.fixture
async def outsider(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A client connecting from an address that is not a trusted proxy."""
    transport = httpx.ASGITransport(app=create_app(container=container), client=("203.0.113.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def basic(email: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


async def test_forwarded_https_from_an_untrusted_peer_does_not_enable_basic(
    outsider: httpx.AsyncClient, client: httpx.AsyncClient, admin: Person
) -> None:
    headers = {**basic(admin.email, PASSWORD), "X-Forwarded-Proto": "https"}
    refused = await outsider.get("/v1/users/current", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == 401.3
    accepted = await client.get("/v1/users/current", headers=headers)  # from the local proxy
    assert accepted.status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"login_limit_per_ip": "2/minute"}])
async def test_login_throttling_per_address_sees_the_client_behind_the_proxy(
    client: httpx.AsyncClient, admin: Person
) -> None:
    wrong = {"email": "nobody@example.org", "password": "not the password at all"}
    for _ in range(2):
        response = await client.post("/v1/sessions", json=wrong, headers={"X-Forwarded-For": "198.51.100.7"})
        assert response.status_code == 401
    blocked = await client.post("/v1/sessions", json=wrong, headers={"X-Forwarded-For": "198.51.100.7"})
    assert blocked.status_code == 429
    other = await client.post(
        "/v1/sessions",
        json={"email": admin.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.8"},
    )
    assert other.status_code == 200, "another client behind the same proxy is not locked out"
