"""docs/mcp.md stays true to the live server: every tool, resource, prompt and scope is there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from odk_mcp.mcp import TOOL_SCOPES
from odk_mcp.services.users import ALL_SCOPES
from tests.conftest import Person
from tests.mcp.conftest import TokenFor

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mcp.md").read_text(encoding="utf-8")


async def test_every_live_tool_resource_and_prompt_is_documented(
    connect: Any, admin: Person, token_for: TokenFor
) -> None:
    async with connect(await token_for(admin, "read")) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        prompts = [p.name for p in (await client.list_prompts()).prompts]
    documented_tools = re.findall(r"^### `([a-z_]+)`$", DOC, re.MULTILINE)
    assert sorted(documented_tools) == sorted(tools)
    for name in tools:
        section = DOC.split(f"### `{name}`", 1)[1]
        first_line = section.strip().split("\n", 1)[0]
        scopes = " + ".join(f"`{scope}`" for scope in TOOL_SCOPES[name])
        assert first_line.startswith(f"Scope {scopes};"), name
    for uri in [*resources, *templates]:
        assert f"| `{uri}` |" in DOC, uri
    for prompt in prompts:
        assert f"| `{prompt}` |" in DOC, prompt
    for scope in ALL_SCOPES:
        assert f"| `{scope}` |" in DOC, scope
