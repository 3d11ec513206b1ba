"""Reading the documents of a bulk import: normal ingestion's reading, runnable in a worker process.

Reading a 30-question submission (parse, typed data, rule findings) costs a few milliseconds of
pure Python, by far the largest cost of an import, so `read_chunk` is a plain function of
picklable values that an import can run in a process pool (one per core) while it writes the
previous batch. It uses exactly what the receiver uses: `read_envelope` and `receiving._read`
(`read_data` + `evaluate_rules`). It raises nothing: the first invalid document comes back as a
`Failure` (rebuilt into a `Problem` by the caller), and documents of a form version the caller
has not resolved yet come back as `missing` (the caller looks the version up and reads again).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from odk_mcp.kernel import problems
from odk_mcp.services.forms import FormTarget
from odk_mcp.services.submissions.domain.envelope import InvalidSubmission, read_envelope
from odk_mcp.services.submissions.receiving import _read


@dataclass(frozen=True)
class ReadDocument:
    """One document, read: what its submission and version rows are made of."""

    index: int  # position in the whole import (for errors)
    version: str
    instance_id: str
    instance_name: str | None
    sha256: str
    data: dict[str, Any]
    flags: list[dict[str, str]]
    findings: list[dict[str, str]]
    media: tuple[str, ...]


@dataclass(frozen=True)
class Failure:
    """The first invalid document: a problem name from the catalogue, message and details."""

    problem: str
    message: str
    details: dict[str, Any]


@dataclass
class ChunkReading:
    documents: list[ReadDocument] = field(default_factory=list)
    failure: Failure | None = None
    missing: set[str] = field(default_factory=set)  # form versions not in `targets`


def read_chunk(
    xmls: list[bytes], start: int, xml_form_id: str, max_xml_bytes: int, targets: dict[str, FormTarget]
) -> ChunkReading:
    out = ChunkReading()
    for offset, xml in enumerate(xmls):
        index = start + offset
        try:
            envelope = read_envelope(xml, max_xml_bytes)
        except InvalidSubmission as exc:
            out.failure = Failure(
                problems.SUBMISSION_NOT_VALID.name,
                f"Document {index} of the import is not a valid submission: {exc}",
                {"index": index},
            )
            return out
        if envelope.xml_form_id != xml_form_id:
            out.failure = Failure(
                problems.UNEXPECTED_VALUE.name,
                f"Document {index} of the import is for form {envelope.xml_form_id}, not {xml_form_id}.",
                {"field": "form id", "value": envelope.xml_form_id, "index": index},
            )
            return out
        if envelope.deprecated_id is not None or envelope.instance_id is None or envelope.encrypted:
            if envelope.encrypted:
                reason = (
                    "is encrypted: its encrypted parts are attachments, which an import does not"
                    " carry; send it through the OpenRosa API with its files."
                )
            elif envelope.deprecated_id is not None:
                reason = (
                    "is an edit (it has a deprecatedID): only original submissions are imported;"
                    " send edits through the OpenRosa or REST API."
                )
            else:
                reason = "has no meta/instanceID: imports are idempotent on instanceID."
            out.failure = Failure(
                problems.UNEXPECTED_VALUE.name,
                f"Document {index} of the import {reason}",
                {"field": "encrypted" if envelope.encrypted else "instanceID", "index": index},
            )
            return out
        target = targets.get(envelope.version)
        if target is None:
            out.missing.add(envelope.version)
            continue
        reading, findings = _read(envelope, target)
        out.documents.append(
            ReadDocument(
                index=index,
                version=envelope.version,
                instance_id=envelope.instance_id,
                instance_name=envelope.instance_name,
                sha256=hashlib.sha256(xml).hexdigest(),
                data=reading.data,
                flags=reading.flags,
                findings=findings,
                media=tuple(dict.fromkeys(reading.media)),
            )
        )
    return out


def first_version(xml: bytes, max_xml_bytes: int) -> str | None:
    """The form version the first document names (to resolve before reading in workers)."""
    try:
        return read_envelope(xml, max_xml_bytes).version
    except InvalidSubmission:
        return None
