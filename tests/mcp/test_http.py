"""/mcp through the real app on a real port: discovery and 401 without a token, both protocol
revisions with an API token (and with a login session), permission errors, 403
insufficient_scope for step-up, host checks, and short-lived media links."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client

from mcp import Client
from odk_mcp.bootstrap import Container
from tests.conftest import Person
from tests.mcp.conftest import BASE, Survey, TokenFor


def mcp_client(token: str, mode: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode)


def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_without_a_token_the_answer_is_401_with_discovery_information(served: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{served}/mcp", json=call("tools/list", {}), headers=HEADERS)
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert (
            challenge.startswith("Bearer ")
            and f'resource_metadata="{served}/.well-known/oauth-protected-resource/mcp"' in challenge
        )
        metadata = (await http.get(f"{served}/.well-known/oauth-protected-resource/mcp")).json()
        bad = await http.post(
            f"{served}/mcp", json=call("tools/list", {}), headers={**HEADERS, "Authorization": "Bearer nope"}
        )
    assert metadata["resource"] == f"{served}/mcp"
    assert metadata["authorization_servers"] == [served + "/"]
    assert metadata["scopes_supported"] == ["read", "submissions", "pii", "review", "forms.write"]
    assert bad.status_code == 401


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_both_protocol_revisions_work_with_an_api_token(
    served: str, admin: Person, token_for: TokenFor, survey: Survey, mode: str
) -> None:
    async with mcp_client(await token_for(admin, "read", "submissions"), mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        names = {t.name for t in (await client.list_tools()).tools}
        projects = await client.call_tool("list_projects", {})
        progress: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        rows = await client.call_tool(
            "query_submissions",
            {"projectId": survey.project_id, "xmlFormId": "household", "limit": 2},
            progress_callback=on_progress,
        )
        guide = await client.read_resource("odk://guide/filters")
    assert "query_submissions" in names
    assert {p["name"] for p in projects.structured_content["projects"]} == {"Survey", "Other"}
    assert rows.structured_content["total"] == 7 and rows.structured_content["truncated"] is True
    assert progress == [0, 1, 2, 3]
    assert "filters" in guide.contents[0].text


async def test_a_login_session_acts_with_every_scope(served: str, admin: Person, survey: Survey) -> None:
    async with mcp_client(admin.token, "legacy") as client:
        result = await client.call_tool(
            "get_submission",
            {"projectId": survey.project_id, "xmlFormId": "household", "instanceId": "uuid:s001"},
        )
    assert not result.is_error
    assert result.structured_content["submission"]["values"]["/respondent_name"] == "Person 1"


async def test_a_project_the_user_cannot_see_is_an_error(
    served: str, viewer: Person, token_for: TokenFor, survey: Survey
) -> None:
    async with mcp_client(await token_for(viewer, "read"), "2026-07-28") as client:
        result = await client.call_tool("list_forms", {"projectId": survey.other_project_id})
    assert result.is_error and "403.1" in result.content[0].text


async def test_a_missing_scope_is_403_insufficient_scope_before_the_call_runs(
    served: str, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    token = await token_for(admin, "read")
    arguments = {"projectId": survey.project_id, "xmlFormId": "household", "instanceId": "uuid:s001"}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{served}/mcp",
            json=call(
                "tools/call",
                {"name": "set_review_state", "arguments": {**arguments, "reviewState": "approved"}},
            ),
            headers={**HEADERS, "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and "review" in challenge
    assert "resource_metadata=" in challenge
    view = await container.submissions.records.get(
        (await container.users.api_tokens.verify_bearer(token)).actor,  # type: ignore[union-attr]
        survey.project_id,
        "household",
        "uuid:s001",
        False,
    )
    assert view.review_state is None


async def test_a_foreign_host_header_is_refused(served: str, admin: Person, token_for: TokenFor) -> None:
    token = await token_for(admin, "read")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{served}/mcp",
            json=call("tools/list", {}),
            headers={**HEADERS, "Authorization": f"Bearer {token}", "Host": "evil.example"},
        )
    assert response.status_code in (400, 421)


async def test_media_comes_as_a_short_lived_link_that_checks_rights_again(
    served: str, admin: Person, token_for: TokenFor, survey: Survey, client: httpx.AsyncClient
) -> None:
    photo = b"\x89PNG fake image bytes"
    put = await client.post(
        f"/v1/projects/{survey.project_id}/forms/household/submissions/uuid:s002/attachments/p2.jpg",
        content=photo,
        headers={**admin.auth, "Content-Type": "image/jpeg"},
    )
    assert put.status_code == 200, put.text
    arguments = {"projectId": survey.project_id, "xmlFormId": "household", "instanceId": "uuid:s002"}
    async with mcp_client(await token_for(admin, "submissions"), "legacy") as mcp:
        withheld = (await mcp.call_tool("get_submission", arguments)).structured_content
    async with mcp_client(await token_for(admin, "submissions", "pii"), "legacy") as mcp:
        shown = (await mcp.call_tool("get_submission", arguments)).structured_content
    assert withheld["attachments"] == [{"name": "p2.jpg", "exists": True, "url": None}]
    url = shown["attachments"][0]["url"]
    assert url.startswith(f"{served}/v1/mcp/media/")
    async with httpx.AsyncClient() as http:
        fetched = await http.get(url)
        tampered = await http.get(url[:-4] + "AAAA")
    assert fetched.status_code == 200 and fetched.content == photo
    assert tampered.status_code == 404


async def test_get_and_delete_are_refused_by_the_stateless_endpoint(
    served: str, admin: Person, token_for: TokenFor
) -> None:
    auth = {"Authorization": f"Bearer {await token_for(admin, 'read')}"}
    async with httpx.AsyncClient() as http:
        stream = await http.get(f"{served}/mcp", headers={**auth, "Accept": "text/event-stream"})
        end = await http.delete(f"{served}/mcp", headers=auth)
    assert stream.status_code == 405 and end.status_code == 405
