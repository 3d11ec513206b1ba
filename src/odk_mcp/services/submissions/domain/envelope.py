"""Reading a submission's XML: which form it is for, its instance ids, and its data.

The data is read once, at write time, against the form's field schema into a JSON document
(groups as objects, repeats as arrays of objects, numbers as numbers), with flags for values
that do not fit: the submission is stored anyway ("store and flag") and nothing re-parses the
XML on read.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from odk_mcp.kernel.safe_xml import UnsafeXml, parse_xml
from odk_mcp.services.forms import Field, FormSchema, safe_name
from odk_mcp.services.submissions.domain.per_schema import derived

_GEOPOINT = re.compile(r"^\s*-?\d+(\.\d+)?\s+-?\d+(\.\d+)?(\s+-?\d+(\.\d+)?)?(\s+-?\d+(\.\d+)?)?\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^\s*-?\d+\s*$")


class InvalidSubmission(ValueError):
    """The XML is not a usable submission (no root id, unparseable)."""


@dataclass(frozen=True)
class Envelope:
    """What identifies a submission, read before the form is known."""

    root: etree._Element
    xml_form_id: str
    version: str
    instance_id: str | None
    deprecated_id: str | None
    instance_name: str | None
    encrypted: bool = False


def _local(element: etree._Element) -> str:
    tag: str = element.tag  # "{namespace}name" or "name"; callers skip comments and PIs
    return tag[tag.index("}") + 1 :] if tag[:1] == "{" else tag


def _meta(root: etree._Element, name: str) -> str | None:
    for meta in root:
        if isinstance(meta.tag, str) and _local(meta) in ("meta", "orx:meta"):
            for child in meta:
                if isinstance(child.tag, str) and _local(child) == name:
                    value = (child.text or "").strip()
                    return value or None
    return None


def read_envelope(xml: bytes, max_bytes: int) -> Envelope:
    try:
        root = parse_xml(xml, max_bytes)
    except UnsafeXml as exc:
        raise InvalidSubmission(str(exc)) from exc
    form_id = root.get("id")
    if not form_id:
        raise InvalidSubmission("the root element has no id attribute naming its form")
    return Envelope(
        root=root,
        xml_form_id=form_id,
        version=root.get("version") or "",
        instance_id=_meta(root, "instanceID"),
        deprecated_id=_meta(root, "deprecatedID"),
        instance_name=_meta(root, "instanceName"),
        encrypted=(root.get("encrypted") or "").strip().lower() == "yes",
    )


def new_instance_id() -> str:
    return f"uuid:{uuid.uuid4()}"


@dataclass
class Reading:
    """The typed data of one submission, with flags and the media files it names."""

    data: dict[str, Any]
    flags: list[dict[str, str]] = field(default_factory=list)
    media: list[str] = field(default_factory=list)


def _typed(value: str, spec: Field, path: str, reading: Reading, choices: dict[str, frozenset[str]]) -> Any:
    if value == "":
        return None
    kind = spec.type
    if kind == "int":
        if _INT.match(value):
            return int(value)
        reading.flags.append({"path": path, "rule": "type", "detail": f"not an integer: {value[:80]}"})
        return value
    if kind == "decimal":
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            reading.flags.append({"path": path, "rule": "type", "detail": f"not a decimal: {value[:80]}"})
            return value
        as_float = float(number)
        return as_float if math.isfinite(as_float) else value
    if kind == "date" and not _DATE.match(value.strip()):
        reading.flags.append({"path": path, "rule": "type", "detail": f"not a date: {value[:80]}"})
    if kind == "geopoint" and not _GEOPOINT.match(value):
        reading.flags.append(
            {"path": path, "rule": "geopoint", "detail": f"malformed geopoint: {value[:80]}"}
        )
    if spec.choices and kind in ("select1", "select", "string"):
        allowed = choices[spec.path]
        chosen = value.split() if spec.select_multiple else [value.strip()]
        unknown = [c for c in chosen if c not in allowed]
        if unknown:
            reading.flags.append(
                {
                    "path": path,
                    "rule": "choice",
                    "detail": "not in the choice list: " + " ".join(unknown)[:200],
                }
            )
    if spec.binary:
        reading.media.append(value.strip())
    return value


def _index(schema: FormSchema) -> tuple[dict[str, Field], dict[str, frozenset[str]]]:
    fields = {f.path: f for f in schema.fields}
    return fields, {f.path: frozenset(c.value for c in f.choices) for f in schema.fields if f.choices}


def read_data(root: etree._Element, schema: FormSchema) -> Reading:
    """The submission's data, typed by the schema; unknown elements are kept and flagged."""
    fields, choices = derived(schema, "reading", _index)
    reading = Reading(data={})

    def walk(element: etree._Element, prefix: str, target: dict[str, Any]) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = _local(child)
            path = f"{prefix}/{name}"
            spec = fields.get(path)
            if spec is None:
                reading.flags.append({"path": path, "rule": "unknown", "detail": "element not in the form"})
                target[name] = _raw(child)
                continue
            if spec.type == "repeat":
                entry: dict[str, Any] = {}
                walk(child, path, entry)
                target.setdefault(name, []).append(entry)
            elif spec.type == "structure" or (len(child) and any(isinstance(c.tag, str) for c in child)):
                group: dict[str, Any] = {}
                walk(child, path, group)
                target[name] = group
            else:
                target[name] = _typed(child.text or "", spec, path, reading, choices)

    walk(root, "", reading.data)
    return reading


def _raw(element: etree._Element) -> Any:
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        return element.text or ""
    return {_local(c): _raw(c) for c in children}


def read_encrypted(root: etree._Element) -> tuple[Reading, dict[str, str]]:
    """An encrypted submission's envelope (the form has a `base64RsaPublicKey`): no readable
    data, and as media the encrypted data file and every encrypted media file it names, which
    are stored like any attachment. Returns the reading and what a decryption needs (the
    RSA-encrypted key, the data file's name, the signature)."""
    parts: dict[str, str] = {}
    media: list[str] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        name = _local(child)
        if name == "media":
            for item in child:
                if isinstance(item.tag, str) and _local(item) == "file":
                    media.append((item.text or "").strip())
        elif name in ("base64EncryptedKey", "encryptedXmlFile", "base64EncryptedElementSignature"):
            parts[name] = (child.text or "").strip()
    key, data_file = parts.get("base64EncryptedKey"), parts.get("encryptedXmlFile")
    if not key:
        raise InvalidSubmission("the encrypted submission has no base64EncryptedKey")
    if not data_file:
        raise InvalidSubmission("the encrypted submission has no encryptedXmlFile")
    for file_name in (data_file, *media):
        if not safe_name(file_name):
            raise InvalidSubmission(f"the encrypted submission names an unusable file: {file_name[:80]!r}")
    encryption = {"key": key, "file": data_file}
    if parts.get("base64EncryptedElementSignature"):
        encryption["signature"] = parts["base64EncryptedElementSignature"]
    return Reading(data={}, media=[data_file, *dict.fromkeys(media)]), encryption
