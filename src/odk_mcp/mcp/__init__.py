"""The MCP server: tools, resources and prompts over the same service facades as REST.

`build_server(container)` builds it; `McpHttp` serves it at `/mcp` inside the main app;
`run_stdio` serves it over stdio for desktop assistants.
"""

from odk_mcp.mcp.server import TOOL_SCOPES, build_server

__all__ = ["TOOL_SCOPES", "build_server"]
