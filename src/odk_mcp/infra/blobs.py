"""The content-addressed blob store shared by forms (attachments, XLSForms) and submissions
(media): files named by their sha256, written durably before the database row that names them
is committed, so a committed row never points at a missing file.

Layout: `<root>/ab/cd/<sha256>`; identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BlobRef:
    sha256: str
    md5: str
    size: int


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: fsync the directory that holds the new name."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _valid(sha256: str) -> bool:
    return len(sha256) == 64 and set(sha256) <= _HEX


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not _valid(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> BlobRef:
        """Store bytes durably (fsync of file and directory) and return their digests."""
        ref = BlobRef(
            hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data)
        )
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
        sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(chunk_size):
                    sha256.update(chunk)
                    md5.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            ref = BlobRef(sha256.hexdigest(), md5.hexdigest(), size)
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
