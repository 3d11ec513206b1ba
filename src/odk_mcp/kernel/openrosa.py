"""The OpenRosa response envelope, shared by the submission routes and the error renderer.

ODK Collect reads `<OpenRosaResponse>` bodies on success and on error, and refuses a response
without `X-OpenRosa-Version: 1.0`.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from functools import lru_cache

from lxml import etree
from starlette.responses import Response

NS = "http://openrosa.org/http/response"
_OPENROSA_PATH = re.compile(r"/(formList|manifest|submission)$")


def is_openrosa_path(path: str) -> bool:
    """Routes ODK Collect and Enketo call, whose errors must be OpenRosa envelopes too."""
    return _OPENROSA_PATH.search(path) is not None


def http_date() -> str:
    """The current time as an HTTP Date header value (RFC 9110), formatted once per second."""
    return _http_date(int(time.time()))


@lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    return formatdate(second, usegmt=True)


def openrosa_headers() -> dict[str, str]:
    return {"X-OpenRosa-Version": "1.0", "Date": http_date()}


@lru_cache(maxsize=64)
def _envelope_body(message: str, nature: str) -> bytes:
    # The same few messages over and over (success above all): built once each.
    root = etree.Element(f"{{{NS}}}OpenRosaResponse", nsmap={None: NS}, items="0")  # type: ignore[dict-item]
    node = etree.SubElement(root, f"{{{NS}}}message", nature=nature)
    node.text = message
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True))


def envelope(message: str, status: int, nature: str = "", headers: dict[str, str] | None = None) -> Response:
    return Response(
        _envelope_body(message, nature),
        status_code=status,
        media_type="text/xml; charset=utf-8",
        headers={**openrosa_headers(), **(headers or {})},
    )
