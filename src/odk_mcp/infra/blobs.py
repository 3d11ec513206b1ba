"""The content-addressed blob store shared by forms (attachments, XLSForms) and submissions
(media): files named by their sha256, written durably before the database row that names them
is committed, so a committed row never points at a missing file.

Two backends implement `BlobStore`: `FileBlobStore` (the default, a directory laid out as
`<root>/ab/cd/<sha256>`) and `S3BlobStore` (any S3-compatible service, `infra/s3_blobs.py`).
Identical content is stored once in either.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BlobRef:
    sha256: str
    md5: str
    size: int


class BlobStore(Protocol):
    """What services need of blob storage. Writes return only once the bytes are durable."""

    def check(self) -> None:
        """Fail at start, with the reason, if the store cannot be used."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def put(self, data: bytes) -> BlobRef: ...

    def put_stream(self, source: BinaryIO, chunk_size: int = 1 << 20) -> BlobRef: ...

    def read(self, sha256: str) -> bytes: ...

    def chunks(self, sha256: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob's bytes in pieces, for streaming large media without holding it whole."""
        ...


def digests_of_stream(source: BinaryIO, sink: BinaryIO, chunk_size: int) -> BlobRef:
    """Copy `source` to `sink` chunk by chunk and return the digests of what was copied."""
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    while chunk := source.read(chunk_size):
        sha256.update(chunk)
        md5.update(chunk)
        size += len(chunk)
        sink.write(chunk)
    return BlobRef(sha256.hexdigest(), md5.hexdigest(), size)


def digests_of(data: bytes) -> BlobRef:
    return BlobRef(
        hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data)
    )


def valid_sha256(sha256: str) -> bool:
    return len(sha256) == 64 and set(sha256) <= _HEX


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: fsync the directory that holds the new name."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not valid_sha256(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"the blob directory {self.root} is not writable")

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> BlobRef:
        """Store bytes durably (fsync of file and directory) and return their digests."""
        ref = digests_of(data)
        target = self.path(ref.sha256)
        if target.is_file() and target.stat().st_size == ref.size:
            return ref
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return ref

    def put_stream(self, source: BinaryIO, chunk_size: int = 1 << 20) -> BlobRef:
        """Store a file-like object chunk by chunk (never whole in memory), durably."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                ref = digests_of_stream(source, out, chunk_size)
                out.flush()
                os.fsync(out.fileno())
            target = self.path(ref.sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return ref

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def chunks(self, sha256: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.path(sha256).open("rb") as source:
            while chunk := source.read(chunk_size):
                yield chunk
