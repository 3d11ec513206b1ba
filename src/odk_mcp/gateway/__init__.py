"""The gateway: one ASGI app composed of every service's routers."""

from odk_mcp.gateway.app import create_app

__all__ = ["create_app"]
