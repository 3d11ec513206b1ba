"""Rewriting an XForm's version attribute (publishing with `?version=`)."""

from __future__ import annotations

from lxml import etree

from odk_mcp.services.forms.domain.safe_xml import parse_xml
from odk_mcp.services.forms.domain.schema import NS, InvalidXForm


def with_version(xform: bytes, version: str, max_bytes: int) -> bytes:
    """The XForm with its primary instance's `version` attribute set to `version`."""
    root = parse_xml(xform, max_bytes)
    instance = root.find("h:head/xf:model/xf:instance", NS)
    data = next((c for c in instance if isinstance(c.tag, str)), None) if instance is not None else None
    if data is None:
        raise InvalidXForm("the form has no primary instance")
    data.set("version", version)
    return bytes(etree.tostring(root, encoding="utf-8", xml_declaration=True))
