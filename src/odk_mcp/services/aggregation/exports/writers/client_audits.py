"""The client audit logs of an export's submissions as one CSV (`<formId> - audit.csv` in the
`.csv.zip`), as ODK Central merges them.

ODK Collect writes an `audit.csv` per submission when the form has an `audit` question: one row
per event (`event`, `node`, `start`, `end`, and with location or change tracking `latitude`,
`longitude`, `accuracy`, `old-value`, `new-value`, `user`, `change-reason`). The merged file
starts each row with the submission's `instance ID` and puts the known columns in a fixed order
whatever the device wrote (missing ones empty, unknown ones dropped). A file that is not UTF-8
is read with replacement characters rather than failing the export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator

import anyio

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.services.aggregation.exports.writers.archive import MediaFile
from odk_mcp.services.aggregation.exports.writers.csv_text import CsvEncoder

COLUMNS = (
    "event",
    "node",
    "start",
    "end",
    "latitude",
    "longitude",
    "accuracy",
    "old-value",
    "new-value",
    "user",
    "change-reason",
)
HEADER = ("instance ID", *COLUMNS)


def audit_rows(instance_id: str, content: bytes) -> list[list[str | None]]:
    """One device's audit log as rows of the merged file."""
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig", errors="replace"), newline=""))
    header = next(reader, None)
    if header is None:
        return []
    positions = {name.strip(): i for i, name in enumerate(header)}
    wanted = [positions.get(name) for name in COLUMNS]
    out: list[list[str | None]] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines
        out.append([instance_id, *[row[i] if i is not None and i < len(row) else None for i in wanted]])
    return out


def _read_all(blobs: BlobStore, sha256: str) -> bytes:
    return b"".join(blobs.chunks(sha256))


async def client_audit_chunks(
    audits: AsyncIterable[tuple[str, MediaFile]], blobs: BlobStore
) -> AsyncIterator[bytes]:
    """The merged CSV's bytes, a device file at a time; nothing at all when there is no log."""
    encoder = CsvEncoder()
    first = True
    async for instance_id, media in audits:
        content = await anyio.to_thread.run_sync(_read_all, blobs, media.sha256)
        rows = audit_rows(instance_id, content)
        if first:
            first = False
            yield encoder.encode([list(HEADER)])
        if rows:
            yield encoder.encode(rows)
