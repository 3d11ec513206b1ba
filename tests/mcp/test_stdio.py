"""`odk-mcp mcp --stdio` as a desktop assistant starts it: a real process, the SDK's stdio
client, the token from the environment (never from tool arguments)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from mcp import Client, StdioServerParameters
from odk_mcp.settings import Settings
from tests.conftest import Person
from tests.mcp.conftest import Survey, TokenFor

SRC = Path(__file__).resolve().parents[2] / "src"


def params(settings: Settings, tmp_path: Path, token: str | None) -> StdioServerParameters:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(SRC),
        "ODK_MCP_DATABASE_URL": settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "ODK_MCP_DATA_DIR": str(tmp_path / "stdio-data"),
        "ODK_MCP_RUN_MIGRATIONS_ON_START": "false",
        "ODK_MCP_LOG_LEVEL": "WARNING",
    }
    if token is not None:
        env["ODK_MCP_MCP_TOKEN"] = token
    return StdioServerParameters(
        command=sys.executable, args=["-c", "from odk_mcp.cli import main; main()", "mcp", "--stdio"], env=env
    )


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_stdio_lists_and_calls_tools_with_the_token_from_the_environment(
    settings: Settings, tmp_path: Path, admin: Person, token_for: TokenFor, survey: Survey, mode: str
) -> None:
    token = await token_for(admin, "read")
    async with Client(params(settings, tmp_path, token), mode=mode) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        projects = await client.call_tool("list_projects", {})
        refused = await client.call_tool(
            "query_submissions", {"projectId": survey.project_id, "xmlFormId": "household"}
        )
    assert "get_form_schema" in tools
    assert {p["name"] for p in projects.structured_content["projects"]} == {"Survey", "Other"}
    assert refused.is_error and "insufficient_scope" in refused.content[0].text


async def test_stdio_without_a_valid_token_exits_with_a_message(settings: Settings, tmp_path: Path) -> None:
    for token, expected in ((None, "ODK_MCP_MCP_TOKEN"), ("odkpat_wrong", "not a valid")):
        spec = params(settings, tmp_path, token)
        done = await anyio.run_process([spec.command, *spec.args], env=spec.env, check=False, input=b"")
        assert done.returncode != 0
        assert expected in done.stderr.decode()
        assert done.stdout == b""  # stdout belongs to the protocol
