"""The OpenRosa response envelope, shared by the submission routes and the error renderer.

ODK Collect reads `<OpenRosaResponse>` bodies on success and on error, and refuses a response
without `X-OpenRosa-Version: 1.0`.
"""

from __future__ import annotations

import re
from email.utils import formatdate

from lxml import etree
from starlette.responses import Response

NS = "http://openrosa.org/http/response"
_OPENROSA_PATH = re.compile(r"/(formList|manifest|submission)$")


def is_openrosa_path(path: str) -> bool:
    """Routes ODK Collect and Enketo call, whose errors must be OpenRosa envelopes too."""
    return _OPENROSA_PATH.search(path) is not None


def openrosa_headers() -> dict[str, str]:
    return {"X-OpenRosa-Version": "1.0", "Date": formatdate(usegmt=True)}


def envelope(message: str, status: int, nature: str = "", headers: dict[str, str] | None = None) -> Response:
    root = etree.Element(f"{{{NS}}}OpenRosaResponse", nsmap={None: NS}, items="0")  # type: ignore[dict-item]
    node = etree.SubElement(root, f"{{{NS}}}message", nature=nature)
    node.text = message
    return Response(
        etree.tostring(root, encoding="UTF-8", xml_declaration=True),
        status_code=status,
        media_type="text/xml; charset=utf-8",
        headers={**openrosa_headers(), **(headers or {})},
    )
