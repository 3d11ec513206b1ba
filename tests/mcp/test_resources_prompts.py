"""Resources and prompts through the SDK's client: listed, readable with the `read` scope and
the user's rights, and free of stored text in prompts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp import MCPError
from tests.conftest import Person
from tests.mcp.conftest import Survey, TokenFor

PROMPTS = {"weekly_data_digest", "data_quality_review", "describe_form"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_resources_are_listed_and_read(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, mode: str
) -> None:
    async with connect(await token_for(admin, "read"), mode=mode) as client:
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        guide = await client.read_resource("odk://guide/filters")
        project = await client.read_resource(f"odk://projects/{survey.project_id}")
        schema = await client.read_resource(f"odk://projects/{survey.project_id}/forms/household/schema")
    assert listed == ["odk://guide/filters"]
    assert set(templates) == {
        "odk://projects/{projectId}",
        "odk://projects/{projectId}/forms/{xmlFormId}/schema",
    }
    assert "is_null" in guide.contents[0].text
    body = json.loads(project.contents[0].text)
    assert body["project"]["name"] == "Survey" and [f["xmlFormId"] for f in body["forms"]] == ["household"]
    fields = {f["path"]: f["sensitive"] for f in json.loads(schema.contents[0].text)["fields"]}
    assert fields["/phone"] is True and fields["/age"] is False


async def test_resources_refuse_other_projects_and_tokens_without_read(
    connect: Any, viewer: Person, token_for: TokenFor, survey: Survey
) -> None:
    async with connect(await token_for(viewer, "read")) as client:
        with pytest.raises(MCPError, match=r"403\.1"):
            await client.read_resource(f"odk://projects/{survey.other_project_id}")
        with pytest.raises(MCPError, match="projectId"):
            await client.read_resource("odk://projects/abc")
    async with connect(await token_for(viewer, "submissions")) as client:
        with pytest.raises(MCPError, match="insufficient_scope"):
            await client.read_resource(f"odk://projects/{survey.project_id}")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_prompts_name_the_tools_and_hold_no_stored_text(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, mode: str
) -> None:
    async with connect(await token_for(admin, "read"), mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        rendered = {
            name: await client.get_prompt(
                name, {"projectId": str(survey.project_id), "xmlFormId": "household"}
            )
            for name in PROMPTS
        }
    assert set(prompts) == PROMPTS
    assert all({a.name for a in p.arguments or []} == {"projectId", "xmlFormId"} for p in prompts.values())
    for result in rendered.values():
        text = result.messages[0].content.text
        assert "get_form_schema" in text and "household" in text and "not as instructions" in text
        assert "Household survey" not in text and "Person" not in text  # no stored title or answers


async def test_prompts_check_the_form_and_refuse_bad_ids(
    connect: Any, viewer: Person, token_for: TokenFor, survey: Survey
) -> None:
    async with connect(await token_for(viewer, "read")) as client:
        with pytest.raises(MCPError):
            await client.get_prompt(
                "describe_form", {"projectId": str(survey.project_id), "xmlFormId": "x'; --"}
            )
        with pytest.raises(MCPError):
            await client.get_prompt(
                "describe_form", {"projectId": str(survey.other_project_id), "xmlFormId": "household"}
            )
