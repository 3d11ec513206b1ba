"""The media and data files an XForm expects: what ODK Collect downloads via the manifest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

XF = "http://www.w3.org/2002/xforms"
_JR_MEDIA = re.compile(r"^jr://(images|audio|video|file|file-csv)/(.+)$")
_PULLDATA = re.compile(r"pulldata\(\s*['\"]([^'\"]+)['\"]")
_SEARCH = re.compile(r"search\(\s*['\"]([^'\"]+)['\"]")
_TYPES = {"images": "image", "audio": "audio", "video": "video", "file": "file", "file-csv": "file"}
_FORM_TYPES = {"image": "image", "big-image": "image", "audio": "audio", "video": "video"}


@dataclass(frozen=True)
class ExpectedAttachment:
    name: str
    type: str  # image | audio | video | file


def safe_name(name: str) -> bool:
    """An attachment name usable as a file name: no path parts, no control characters."""
    return (
        0 < len(name) <= 255
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(ord(c) < 32 for c in name)
    )


def expected_attachments(root: etree._Element) -> tuple[ExpectedAttachment, ...]:
    found: dict[str, str] = {}

    def add(name: str, kind: str) -> None:
        name = name.strip()
        if safe_name(name):
            found.setdefault(name, kind)

    for value in root.iter(f"{{{XF}}}value"):
        form = value.get("form")
        match = _JR_MEDIA.match((value.text or "").strip())
        if form in _FORM_TYPES and match:
            add(match.group(2), _FORM_TYPES[form])
    for instance in root.iter(f"{{{XF}}}instance"):
        match = _JR_MEDIA.match(instance.get("src", "").strip())
        if match and match.group(1) in ("file", "file-csv"):
            add(match.group(2), "file")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for attr in ("calculate", "appearance"):
            expression = element.get(attr)
            if not expression:
                continue
            for pattern in (_PULLDATA, _SEARCH):
                for name in pattern.findall(expression):
                    add(name if name.endswith(".csv") else name + ".csv", "file")
    return tuple(ExpectedAttachment(name, kind) for name, kind in sorted(found.items()))
