"""`odk-mcp mcp --stdio`: the MCP server over stdin/stdout for desktop assistants.

The credentials come from the settings (`ODK_MCP_MCP_TOKEN`), never from tool arguments; the
token is verified at start (a clear error instead of a server that fails every call) and again
on every call, so revoking it ends access at once. Logs go to stderr: stdout is the protocol.
"""

from __future__ import annotations

from odk_mcp.bootstrap import Container
from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.mcp.server import build_server


async def run_stdio(container: Container) -> None:
    secret = container.settings.mcp_token
    if secret is None:
        raise Problem(
            problems.AUTHENTICATION_REQUIRED,
            "Set ODK_MCP_MCP_TOKEN to an API token (POST /v1/users/current/tokens) to serve MCP over stdio.",
        )
    token = secret.get_secret_value()
    if await container.users.api_tokens.verify_bearer(token) is None:
        raise Problem(
            problems.AUTHENTICATION_FAILED, "ODK_MCP_MCP_TOKEN is not a valid (or an expired) token."
        )
    await build_server(container, token=token).run_stdio_async()
