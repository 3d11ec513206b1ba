"""A real third-party client: the MCP Inspector CLI (npm `@modelcontextprotocol/inspector`)
lists and calls tools over HTTP and over stdio. It is installed from npm into a cache
directory on first use; without Node/npm the test skips, and fails in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from odk_mcp.settings import Settings
from tests.conftest import Person, in_ci
from tests.mcp.conftest import Survey, TokenFor
from tests.mcp.test_stdio import params

VERSION = "2.12.0"
CACHE = Path(os.environ.get("ODK_MCP_TEST_NPM_CACHE", Path.home() / ".cache" / "odk-mcp-test-npm"))


@pytest.fixture(scope="session")
def inspector() -> Path:
    binary = CACHE / "node_modules" / ".bin" / "mcp-inspector"
    if binary.exists():
        return binary
    if shutil.which("npm") is None or shutil.which("node") is None:
        if in_ci():
            pytest.fail("Node.js and npm are needed for the MCP Inspector test")
        pytest.skip("Node.js and npm are not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(CACHE),
            "--no-audit",
            "--no-fund",
            f"@modelcontextprotocol/inspector@{VERSION}",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return binary


async def run(inspector: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    done = await anyio.run_process(
        [str(inspector), "--cli", *args], check=False, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout)


async def test_the_inspector_lists_and_calls_tools_over_http(
    inspector: Path,
    served: str,
    admin: Person,
    token_for: TokenFor,
    survey: Survey,
) -> None:
    header = f"Authorization: Bearer {await token_for(admin, 'read', 'submissions')}"
    url = f"{served}/mcp"
    listed = await run(inspector, url, "--transport", "http", "--header", header, "--method", "tools/list")
    called = await run(
        inspector,
        url,
        "--transport",
        "http",
        "--header",
        header,
        "--method",
        "tools/call",
        "--tool-name",
        "list_forms",
        "--tool-arg",
        f"projectId={survey.project_id}",
    )
    assert "query_submissions" in {t["name"] for t in listed["tools"]}
    assert [f["xmlFormId"] for f in called["structuredContent"]["forms"]] == ["household"]


async def test_the_inspector_lists_and_calls_tools_over_stdio(
    inspector: Path, settings: Settings, tmp_path: Path, admin: Person, token_for: TokenFor, survey: Survey
) -> None:
    spec = params(settings, tmp_path, await token_for(admin, "read"))
    env_args = [arg for key, value in (spec.env or {}).items() for arg in ("-e", f"{key}={value}")]
    command = [*env_args, spec.command, *spec.args]
    listed = await run(inspector, *command, "--method", "tools/list")
    called = await run(inspector, *command, "--method", "tools/call", "--tool-name", "list_projects")
    assert "get_form_schema" in {t["name"] for t in listed["tools"]}
    assert {p["name"] for p in called["structuredContent"]["projects"]} == {"Survey", "Other"}
