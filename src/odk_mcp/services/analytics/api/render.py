"""Results as JSON for the HTTP handlers (the conversion itself lives in `results`, which the
analysis jobs use too when they store a result)."""

from odk_mcp.services.analytics.results import camel, to_json

__all__ = ["camel", "to_json"]
