"""The `.csv.zip` archive, streamed: members are written one after another as their bytes
arrive, so memory stays bounded whatever the export's size (stream-zip does the format).

Central's layout: `<formId>.csv`, then one CSV per repeat, then `media/<attachment name>`.
Two submissions may carry attachments with the same name; like Central we write both and
leave the conflict to the unzipping client (the zip format allows duplicate names).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
from stream_zip import ZIP_64, ZIP_AUTO, AsyncMemberFile, async_stream_zip

from odk_mcp.services.aggregation.exports.domain.layout import sanitize_filename

# Level 3 keeps most of deflate's gain on CSV text at a fraction of level 9's CPU.
CSV_COMPRESSION_LEVEL = 3
MEDIA_CHUNK_BYTES = 1 << 18
FILE_MODE = 0o100644


@dataclass(frozen=True)
class MediaFile:
    name: str  # the attachment's name as the submission gave it
    path: Path  # where its bytes are (the blob store)
    size: int


def csv_member(name: str, chunks: AsyncIterable[bytes], now: datetime | None = None) -> AsyncMemberFile:
    return (name, now or datetime.now(UTC), FILE_MODE, ZIP_64, chunks)


def media_member_name(name: str) -> str:
    return "media/" + sanitize_filename(name)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(MEDIA_CHUNK_BYTES):
            yield chunk


def media_member(media: MediaFile, now: datetime | None = None) -> AsyncMemberFile:
    # Media is mostly already compressed (photos, audio): stored with deflate level 0.
    method = ZIP_AUTO(media.size, level=0)
    return (
        media_member_name(media.name),
        now or datetime.now(UTC),
        FILE_MODE,
        method,
        _file_chunks(media.path),
    )


def _compressobj() -> zlib._Compress:
    return zlib.compressobj(wbits=-zlib.MAX_WBITS, level=CSV_COMPRESSION_LEVEL)


def zip_stream(
    members: AsyncIterable[AsyncMemberFile], get_compressobj: Callable[[], zlib._Compress] = _compressobj
) -> AsyncIterable[bytes]:
    """The archive's bytes, produced as the members' chunks are consumed."""
    return async_stream_zip(members, get_compressobj=get_compressobj)
