"""HTTP API of the analytics service."""

from odk_mcp.services.analytics.api.routes import router

__all__ = ["router"]
