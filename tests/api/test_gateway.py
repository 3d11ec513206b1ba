"""The gateway: request ids, metrics by route template, rate limits, secret-free logs, errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import structlog
from tests.conftest import PASSWORD, MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.kernel import problems


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "trace-abc.123"})
    assert response.headers["x-request-id"] == "trace-abc.123"


async def test_request_id_is_generated_when_absent_or_unsafe(client: httpx.AsyncClient) -> None:
    generated = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(2)}
    unsafe = (await client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})).headers
    assert len(generated) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in generated)
    assert unsafe["x-request-id"] != "bad id\twith spaces"


async def test_error_responses_carry_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/current", headers={"X-Request-Id": "err-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "err-1"


async def test_unexpected_errors_are_500_1_with_the_request_id(container: Container) -> None:
    app = create_app(container=container)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/v1/boom", headers={"X-Request-Id": "bug-report-7"})
        metrics = (await http.get("/metrics")).text

    assert response.status_code == 500
    assert response.json() == {"message": problems.INTERNAL.message, "code": 500.1}
    assert response.headers["x-request-id"] == "bug-report-7"
    assert "a bug" not in response.text
    assert 'odk_mcp_http_errors_total{route="/v1/boom"} 1.0' in metrics


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient, admin: Person) -> None:
    project = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()
    await client.get(f"/v1/projects/{project['id']}", headers=admin.auth)
    await client.get("/v1/projects/999", headers=admin.auth)
    await client.get("/v1/no/such/route")

    response = await client.get("/metrics")

    assert response.status_code == 200
    metrics = response.text
    assert "odk_mcp_http_requests_total" in metrics
    assert re.search(
        r'odk_mcp_http_requests_total\{method="GET",route="/v1/projects/\{project_id\}",status="200"\} 1\.0',
        metrics,
    )
    assert re.search(
        r'odk_mcp_http_requests_total\{method="GET",route="/v1/projects/\{project_id\}",status="404"\} 1\.0',
        metrics,
    )
    assert 'route="unmatched"' in metrics
    assert f'/v1/projects/{project["id"]}"' not in metrics
    assert "/v1/no/such/route" not in metrics
    assert "odk_mcp_http_request_duration_seconds_bucket" in metrics


async def test_metrics_never_name_app_user_keys(client: httpx.AsyncClient, admin: Person) -> None:
    project = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()
    app_user = (
        await client.post(
            f"/v1/projects/{project['id']}/app-users", json={"displayName": "T"}, headers=admin.auth
        )
    ).json()
    await client.get(f"/v1/key/{app_user['token']}/projects")
    await client.get("/v1/key/not-a-real-token/projects")
    metrics = (await client.get("/metrics")).text
    assert app_user["token"] not in metrics
    assert "not-a-real-token" not in metrics
    assert 'route="/v1/projects"' in metrics


async def test_wrong_method_is_405_1_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/projects")
    assert response.status_code == 405
    assert response.json()["code"] == 405.1
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_readiness_and_liveness(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_errors_are_json_problems(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/projects")
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"message", "code"}


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"rate_limit": "5/minute"}

    async def test_requests_beyond_the_limit_are_429_2_with_retry_after(
        self, client: httpx.AsyncClient
    ) -> None:
        statuses = [(await client.get("/v1/projects")).status_code for _ in range(5)]
        limited = await client.get("/v1/projects")

        assert statuses == [401] * 5
        assert limited.status_code == 429
        assert limited.json()["code"] == 429.2
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["x-request-id"]

    async def test_health_and_metrics_are_exempt(self, client: httpx.AsyncClient) -> None:
        for _ in range(6):
            await client.get("/v1/projects")
        assert (await client.get("/v1/projects")).status_code == 429
        assert [(await client.get("/healthz")).status_code for _ in range(10)] == [200] * 10
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200

    async def test_limit_counts_app_user_key_paths_as_the_same_client(
        self, client: httpx.AsyncClient
    ) -> None:
        for _ in range(5):
            await client.get("/v1/key/some-token/projects")
        assert (await client.get("/v1/projects")).status_code == 429


class TestLogs:
    @pytest.fixture(autouse=True)
    def restore_logging(self) -> Iterator[None]:
        yield
        structlog.reset_defaults()

    async def test_logs_never_contain_tokens_keys_or_passwords(
        self,
        client: httpx.AsyncClient,
        admin: Person,
        make_user: MakeUser,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # Configured here, in the test's phase: the logger binds the stderr capsys captures now.
        configure_logging("INFO", True)
        secret_password = "hunter2 is not a good password"
        user = await make_user("logged@example.org", password=secret_password)
        project = (await client.post("/v1/projects", json={"name": "P"}, headers=admin.auth)).json()
        app_user = (
            await client.post(
                f"/v1/projects/{project['id']}/app-users", json={"displayName": "T"}, headers=admin.auth
            )
        ).json()

        await client.get(f"/v1/key/{app_user['token']}/projects")
        await client.get("/v1/key/forged-key-value-0123456789/projects")
        await client.get("/v1/users/current", headers=user.auth)
        await client.get("/v1/users/current", headers={"Authorization": "Bearer forged-bearer-0123456789"})
        await client.post(
            "/v1/sessions", json={"email": "logged@example.org", "password": "wrong-pass-0123456789"}
        )
        await client.post("/v1/sessions", json={"email": "logged@example.org", "password": secret_password})
        await client.delete(f"/v1/sessions/{admin.token}", headers=user.auth)
        await client.get("/v1/projects", params={"st": "public-link-token-0123456789"})

        output = capsys.readouterr()
        logged = output.out + output.err
        lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
        assert any(
            line.get("event") == "request" and line.get("route") == "/v1/projects" for line in lines
        ), "the access log was not captured"
        for secret in (
            app_user["token"],
            "forged-key-value-0123456789",
            user.token,
            admin.token,
            "forged-bearer-0123456789",
            secret_password,
            "wrong-pass-0123456789",
            "public-link-token-0123456789",
            PASSWORD,
        ):
            assert secret not in logged

    async def test_access_log_names_request_id_route_and_status(
        self, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("INFO", True)
        await client.get("/v1/projects/12345", headers={"X-Request-Id": "log-check-1"})
        logged = capsys.readouterr().err
        [line] = [line for line in logged.splitlines() if "log-check-1" in line]
        entry = json.loads(line)
        assert (entry["event"], entry["route"], entry["status"]) == (
            "request",
            "/v1/projects/{project_id}",
            401,
        )
        assert "12345" not in line
