"""The MCP tools, one module per area; each module's `register(server, deps)` adds its tools."""
