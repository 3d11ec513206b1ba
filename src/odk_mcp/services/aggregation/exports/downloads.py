"""How export files go out over HTTP: the Content-Disposition header and chunked file reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

CHUNK = 1 << 20


def content_disposition(file_name: str) -> str:
    """`attachment` with an ASCII fallback and the UTF-8 name (RFC 6266), as ODK Central sends."""
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def file_chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes in pieces (a sync iterator: Starlette reads it in a worker thread)."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
