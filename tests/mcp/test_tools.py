"""Every tool through the SDK's in-process client, on the real services and database: results,
schemas and annotations, redaction with and without `pii`, truncation and cursors, permission
and scope denials, the audit trail."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from mcp import Client
from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.mcp import TOOL_SCOPES
from tests.conftest import Person
from tests.mcp.conftest import INJECTION, Survey, TokenFor

ALL = ("read", "submissions", "pii", "review", "forms.write")


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def error(result: Any) -> str:
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_every_tool_is_listed_with_input_and_output_schemas_and_annotations(
    connect: Any, admin: Person, token_for: TokenFor, mode: str
) -> None:
    async with connect(await token_for(admin, *ALL), mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(TOOL_SCOPES)
    for tool in tools.values():
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert tool.annotations is not None and tool.annotations.read_only_hint is not None
        assert tool.description and len(tool.description) > 40
    assert tools["query_submissions"].annotations.read_only_hint is True
    assert tools["set_review_state"].annotations.read_only_hint is False
    assert "untrusted" in tools["query_submissions"].description
    assert tools["query_submissions"].input_schema["properties"]["limit"]["maximum"] == 100


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_catalogue_tools_list_projects_forms_and_the_schema_with_sensitivity(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, mode: str
) -> None:
    async with connect(await token_for(admin, "read"), mode=mode) as client:
        projects = data(await client.call_tool("list_projects", {}))["projects"]
        forms = data(await client.call_tool("list_forms", {"projectId": survey.project_id}))["forms"]
        schema = data(
            await client.call_tool(
                "get_form_schema", {"projectId": survey.project_id, "xmlFormId": "household"}
            )
        )
    assert {p["name"] for p in projects} == {"Survey", "Other"}
    assert [f["xmlFormId"] for f in forms] == ["household"]
    fields = {f["path"]: f for f in schema["fields"]}
    sensitive = {p for p, f in fields.items() if f["sensitive"]}
    assert sensitive == {"/respondent_name", "/phone", "/location", "/photo"}
    assert [c["value"] for c in fields["/consent"]["choices"]] == ["yes", "no"]
    assert fields["/child/cname"]["repeat"] == "/child"


async def test_query_redacts_sensitive_fields_without_pii_and_shows_them_with_it(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    args = {"projectId": survey.project_id, "xmlFormId": "household", "limit": 100}
    async with connect(await token_for(admin, "submissions")) as client:
        page = data(await client.call_tool("query_submissions", args))
    assert page["total"] == 7 and page["returned"] == 7 and page["truncated"] is False
    row = next(r for r in page["rows"] if r["instanceId"] == "uuid:s001")
    assert row["values"]["/respondent_name"] is None and row["values"]["/phone"] is None
    assert row["values"]["/location"] is None
    assert set(row["redacted"]) == {"/respondent_name", "/phone", "/location", "/photo"}
    assert row["values"]["/age"] == 30 and row["values"]["/village_name"] == "Kibera"
    assert row["values"]["/child"] == [{"/child/cname": "Kid 1"}]
    assert "Person 1" not in json.dumps(page)
    async with connect(await token_for(admin, "submissions", "pii")) as client:
        page = data(await client.call_tool("query_submissions", args))
    row = next(r for r in page["rows"] if r["instanceId"] == "uuid:s001")
    assert row["values"]["/respondent_name"] == "Person 1" and row["redacted"] == []


async def test_respondent_text_comes_back_only_as_data(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    async with connect(await token_for(admin, "submissions")) as client:
        page = data(
            await client.call_tool(
                "query_submissions",
                {
                    "projectId": survey.project_id,
                    "xmlFormId": "household",
                    "filters": [{"field": "/village_name", "op": "contains", "value": "ignore previous"}],
                },
            )
        )
        tools = (await client.list_tools()).tools
    assert [r["values"]["/village_name"] for r in page["rows"]] == [INJECTION]
    assert all(INJECTION not in (t.description or "") for t in tools)


async def test_filters_are_typed_and_combined(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    async def ids(filters: list[dict[str, Any]]) -> list[str]:
        args = {"projectId": survey.project_id, "xmlFormId": "household", "filters": filters, "limit": 100}
        page = data(await client.call_tool("query_submissions", args))
        return sorted(r["instanceId"] for r in page["rows"])

    async with connect(await token_for(admin, "submissions")) as client:
        # "unknown" was stored as text (flagged): it never matches a numeric range.
        assert await ids([{"field": "/age", "op": "gte", "value": 45}]) == [
            "uuid:s002",
            "uuid:s004",
            "uuid:s005",
        ]
        assert await ids([{"field": "/age", "op": "lt", "value": 18}]) == ["uuid:s003"]
        assert (
            await ids(
                [
                    {"field": "/age", "op": "gte", "value": 18},
                    {"field": "/consent", "op": "eq", "value": "no"},
                ]
            )
            == []
        )  # s003 (17) is too young, s006's age was not a number
        assert await ids([{"field": "/consent", "op": "eq", "value": "no"}]) == ["uuid:s003", "uuid:s006"]
        assert await ids([{"field": "instanceId", "op": "in", "value": ["uuid:s001", "uuid:s007"]}]) == [
            "uuid:s001",
            "uuid:s007",
        ]
        assert await ids([{"field": "submittedAt", "op": "lt", "value": "2000-01-01"}]) == []
        assert len(await ids([{"field": "reviewState", "op": "is_null"}])) == 7
        # Hostile or wrong filters are refused with a message, never run as SQL.
        for bad in (
            [{"field": "/age'; DROP TABLE submissions.submissions; --", "op": "eq", "value": 1}],
            [{"field": "/child/cname", "op": "eq", "value": "Kid 1"}],
            [{"field": "/respondent_name", "op": "eq", "value": "Person 1"}],
            [{"field": "/age", "op": "gt", "value": "old"}],
            [{"field": "/age", "op": "in", "value": []}],
            [{"field": "submittedAt", "op": "gt", "value": "yesterday"}],
        ):
            args = {"projectId": survey.project_id, "xmlFormId": "household", "filters": bad}
            assert "400.8" in error(await client.call_tool("query_submissions", args)), bad
    async with connect(await token_for(admin, "submissions", "pii")) as client:
        assert await ids([{"field": "/respondent_name", "op": "eq", "value": "Person 2"}]) == ["uuid:s002"]


async def test_pages_follow_the_cursor_until_the_end_and_the_cursor_is_bound_to_its_query(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    args: dict[str, Any] = {
        "projectId": survey.project_id,
        "xmlFormId": "household",
        "limit": 3,
        "fields": ["/age"],
    }
    seen: list[str] = []
    async with connect(await token_for(admin, "submissions")) as client:
        page = data(await client.call_tool("query_submissions", args))
        first_cursor = page["cursor"]
        while True:
            assert page["total"] == 7
            seen += [r["instanceId"] for r in page["rows"]]
            assert all(set(r["values"]) == {"/age"} for r in page["rows"])
            if not page["truncated"]:
                assert page["cursor"] is None
                break
            page = data(await client.call_tool("query_submissions", {**args, "cursor": page["cursor"]}))
        assert sorted(seen) == [f"uuid:s{n:03d}" for n in range(1, 8)] and len(seen) == 7
        other = {**args, "cursor": first_cursor, "filters": [{"field": "/age", "op": "gt", "value": 1}]}
        assert "another query" in error(await client.call_tool("query_submissions", other))
        assert "not valid" in error(
            await client.call_tool("query_submissions", {**args, "cursor": "garbage!"})
        )


async def test_a_result_past_the_size_cap_is_truncated_with_a_cursor(
    container: Container, connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    object.__setattr__(container.settings, "mcp_max_result_bytes", 10_000)
    args = {"projectId": survey.project_id, "xmlFormId": "household", "limit": 100}
    big = "x" * 4000
    async with container.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE submissions.versions"
                " SET data = jsonb_set(data, '{village_name}', to_jsonb(CAST(:v AS text)))"
            ),
            {"v": big},
        )
    async with connect(await token_for(admin, "submissions")) as client:
        page = data(await client.call_tool("query_submissions", args))
        assert page["truncated"] is True and 1 <= page["returned"] < 7 and page["total"] == 7
        rest = data(await client.call_tool("query_submissions", {**args, "cursor": page["cursor"]}))
    assert page["returned"] + rest["returned"] <= 7
    assert not {r["instanceId"] for r in page["rows"]} & {r["instanceId"] for r in rest["rows"]}


async def test_get_submission_gives_details_links_and_redaction(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    args = {"projectId": survey.project_id, "xmlFormId": "household", "instanceId": "uuid:s005"}
    async with connect(await token_for(admin, "submissions")) as client:
        plain = data(await client.call_tool("get_submission", args))
    async with connect(await token_for(admin, "submissions", "pii")) as client:
        full = data(await client.call_tool("get_submission", args))
        missing = await client.call_tool("get_submission", {**args, "instanceId": "uuid:nope"})
    assert plain["submission"]["values"]["/phone"] is None and plain["instanceName"] is None
    assert full["submission"]["values"]["/phone"] == "+254700000005"
    assert [f["path"] for f in full["findings"]] == ["/age"]  # 150 breaks the constraint
    assert full["attachments"] == [{"name": "p5.jpg", "exists": False, "url": None}]
    assert "404.1" in error(missing)


async def test_validation_findings_lists_violations(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    async with connect(await token_for(admin, "submissions")) as client:
        found = data(
            await client.call_tool(
                "validation_findings", {"projectId": survey.project_id, "xmlFormId": "household"}
            )
        )
    # Newest first; "unknown" is not a number, so `. < 120` fails for it too (Collect's semantics).
    assert [(f["instanceId"], f["path"], f["rule"]) for f in found["findings"]] == [
        ("uuid:s006", "/age", "constraint"),
        ("uuid:s005", "/age", "constraint"),
    ]
    assert found["truncated"] is False


async def test_review_tools_change_state_and_comment_with_the_review_scope(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    args = {"projectId": survey.project_id, "xmlFormId": "household", "instanceId": "uuid:s005"}
    async with connect(await token_for(admin, "submissions")) as client:
        refused = await client.call_tool("set_review_state", {**args, "reviewState": "hasIssues"})
    assert "insufficient_scope" in error(refused)
    async with connect(await token_for(admin, "review")) as client:
        state = data(await client.call_tool("set_review_state", {**args, "reviewState": "hasIssues"}))
        note = data(await client.call_tool("add_comment", {**args, "body": "Age 150 looks wrong."}))
    assert state["reviewState"] == "hasIssues"
    assert note["comment"]["body"] == "Age 150 looks wrong."
    view = await container.submissions.records.get(SYSTEM, survey.project_id, "household", "uuid:s005", False)
    assert view.review_state == "hasIssues"


XLSFORM = """
| survey |
|        | type    | name  | label      |
|        | text    | crop  | Main crop  |
|        | integer | acres | Acres      |
| settings |
|          | form_id  | version |
|          | farm     | 1       |
"""


async def test_form_tools_create_a_draft_from_xlsform_text_and_publish_it(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    async with connect(await token_for(admin, "read", "forms.write")) as client:
        draft = data(
            await client.call_tool("create_form_draft", {"projectId": survey.project_id, "xlsform": XLSFORM})
        )
        assert draft["status"] == "draft" and draft["xmlFormId"] == "farm"
        published = data(
            await client.call_tool("publish_draft", {"projectId": survey.project_id, "xmlFormId": "farm"})
        )
        assert published["version"] == "1" and published["publishedAt"]
        broken = await client.call_tool(
            "create_form_draft",
            {"projectId": survey.project_id, "xlsform": "| survey |\n| | type |\n| | nonsense |"},
        )
    assert "400" in error(broken)


async def test_permissions_are_the_users_own_wrong_project_and_missing_scope_are_refused(
    connect: Any, viewer: Person, token_for: TokenFor, survey: Survey
) -> None:
    async with connect(await token_for(viewer, *ALL)) as client:
        projects = data(await client.call_tool("list_projects", {}))["projects"]
        assert [p["id"] for p in projects] == [survey.project_id]
        other = await client.call_tool("list_forms", {"projectId": survey.other_project_id})
        assert "403.1" in error(other)
        review = await client.call_tool(
            "set_review_state",
            {
                "projectId": survey.project_id,
                "xmlFormId": "household",
                "instanceId": "uuid:s001",
                "reviewState": "approved",
            },
        )
        assert "403.1" in error(review)  # the scope is there, the role does not allow it
        assert data(
            await client.call_tool(
                "query_submissions", {"projectId": survey.project_id, "xmlFormId": "household"}
            )
        )
    async with connect(await token_for(viewer, "read")) as client:
        rows = await client.call_tool(
            "query_submissions", {"projectId": survey.project_id, "xmlFormId": "household"}
        )
        assert "insufficient_scope" in error(rows) and "submissions" in error(rows)


async def test_a_revoked_token_stops_working_at_once(
    connect: Any, admin: Person, token_for: TokenFor, client: Any, survey: Survey
) -> None:
    token = await token_for(admin, "read")
    async with connect(token) as mcp:
        assert data(await mcp.call_tool("list_projects", {}))
        listed = (await client.get("/v1/users/current/tokens", headers=admin.auth)).json()
        await client.delete(f"/v1/users/current/tokens/{listed[0]['id']}", headers=admin.auth)
        assert "Authentication failed" in error(await mcp.call_tool("list_projects", {}))


async def test_every_call_is_audited_without_the_response_body(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    async with connect(await token_for(admin, "submissions", "pii")) as client:
        data(
            await client.call_tool(
                "query_submissions", {"projectId": survey.project_id, "xmlFormId": "household"}
            )
        )
        error(await client.call_tool("list_projects", {}))
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT actor_id, target_type, target_id, details FROM events.audits"
                    " WHERE action = 'mcp.tool' ORDER BY id"
                )
            )
        ).all()
    assert [(r.details["tool"], r.details["outcome"]) for r in rows] == [("query_submissions", "ok")]
    assert rows[0].actor_id == admin.id and rows[0].target_id == "household" and rows[0].details["rows"] == 7
    assert "Person" not in json.dumps([r.details for r in rows])


async def test_calls_past_the_rate_limit_are_refused(
    container: Container, connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    object.__setattr__(container.settings, "mcp_rate_limit", "3/minute")
    async with connect(await token_for(admin, "read")) as client:
        results = [await client.call_tool("list_projects", {}) for _ in range(4)]
    assert [r.is_error for r in results] == [False, False, False, True]
    assert "429.2" in error(results[-1])


async def test_progress_is_reported_on_query_submissions(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with connect(await token_for(admin, "submissions")) as client:
        assert isinstance(client, Client)
        data(
            await client.call_tool(
                "query_submissions",
                {"projectId": survey.project_id, "xmlFormId": "household"},
                progress_callback=progress,
            )
        )
    assert [p[0] for p in seen] == [0, 1, 2, 3] and seen[-1][1] == 3
