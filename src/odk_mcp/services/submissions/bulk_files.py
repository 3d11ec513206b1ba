"""Where `odk-mcp import` finds submission XML: files, folders (every `*.xml` below, in name
order) and zip archives (every `*.xml` member), read lazily one document at a time."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from odk_mcp.services.submissions.bulk import ImportDocument


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.xml") if p.is_file())
        else:
            yield path


def _members(archive: zipfile.ZipFile) -> list[str]:
    return sorted(n for n in archive.namelist() if n.lower().endswith(".xml") and not n.endswith("/"))


def count_documents(paths: Sequence[Path]) -> int:
    total = 0
    for path in _files(paths):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                total += len(_members(archive))
        else:
            total += 1
    return total


def read_documents(paths: Sequence[Path], max_bytes: int) -> Iterator[ImportDocument]:
    """Each document, read up to one byte past `max_bytes` (enough for the import to refuse an
    oversized one, never a whole zip bomb in memory)."""
    for path in _files(paths):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in _members(archive):
                    with archive.open(name) as member:
                        yield ImportDocument(member.read(max_bytes + 1))
        else:
            with path.open("rb") as file:
                yield ImportDocument(file.read(max_bytes + 1))
