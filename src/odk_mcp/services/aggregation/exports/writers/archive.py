"""The `.csv.zip` archive, streamed: members are written one after another as their bytes
arrive, so memory stays bounded whatever the export's size (stream-zip does the format).

Central's layout: `<formId>.csv`, then one CSV per repeat, then `media/<attachment name>`.
Two submissions may carry attachments with the same name; like Central we write both and
leave the conflict to the unzipping client (the zip format allows duplicate names).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from stream_zip import ZIP_64, ZIP_AUTO, AsyncMemberFile, async_stream_zip

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.services.aggregation.exports.domain.layout import sanitize_filename

# Level 1: on CSV it keeps ~93 % of level 3's gain at 2.4 times its speed (measured here: 60 vs 25 MB/s),
# and deflate, not PostgreSQL, is what bounds a big export's speed.
CSV_COMPRESSION_LEVEL = 1
MEDIA_CHUNK_BYTES = 1 << 18
FILE_MODE = 0o100644


@dataclass(frozen=True)
class MediaFile:
    name: str  # the attachment's name as the submission gave it
    sha256: str  # its blob
    size: int


def csv_member(name: str, chunks: AsyncIterable[bytes], now: datetime | None = None) -> AsyncMemberFile:
    return (name, now or datetime.now(UTC), FILE_MODE, ZIP_64, chunks)


def media_member_name(name: str) -> str:
    return "media/" + sanitize_filename(name)


async def _blob_chunks(blobs: BlobStore, sha256: str) -> AsyncIterator[bytes]:
    """A blob's bytes read in a worker thread, chunk by chunk (local disk or S3 alike)."""
    pieces: Iterator[bytes] = blobs.chunks(sha256, MEDIA_CHUNK_BYTES)
    end = b""
    while chunk := await anyio.to_thread.run_sync(next, pieces, end):
        yield chunk


def media_member(media: MediaFile, blobs: BlobStore, now: datetime | None = None) -> AsyncMemberFile:
    # Media is mostly already compressed (photos, audio): deflate level 0 only frames it.
    method = ZIP_AUTO(media.size, level=0)
    chunks = _blob_chunks(blobs, media.sha256)
    return (media_member_name(media.name), now or datetime.now(UTC), FILE_MODE, method, chunks)


def _compressobj() -> zlib._Compress:
    return zlib.compressobj(wbits=-zlib.MAX_WBITS, level=CSV_COMPRESSION_LEVEL)


def zip_stream(
    members: AsyncIterable[AsyncMemberFile], get_compressobj: Callable[[], zlib._Compress] = _compressobj
) -> AsyncIterable[bytes]:
    """The archive's bytes, produced as the members' chunks are consumed."""
    return async_stream_zip(members, get_compressobj=get_compressobj)
