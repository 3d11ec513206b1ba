"""The hardened XML parser now lives in the kernel (shared with submissions)."""

from odk_mcp.kernel.safe_xml import MAX_DEPTH, UnsafeXml, parse_xml

__all__ = ["MAX_DEPTH", "UnsafeXml", "parse_xml"]
