"""From row batches to export files: the one place that drives the writers.

Rows come from a `RowSource` (the read model in production, plain lists in tests) one batch
at a time; each format either yields bytes as it goes (CSV, zip, GeoJSON) or writes a file in a
worker thread batch by batch (XLSX, Parquet, SPSS), so no format holds a whole export in
memory except `.sav`, whose library needs the whole table (capped by `sav_max_rows`). The
Arrow, Polars, ReadStat and xlsxwriter writers are imported on first use: they weigh ~200 MB
and a second of start-up, which CSV exports (and servers that never export) should not pay.
`progress(rows)` is called after every batch, for export jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import anyio

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.exports.domain.layout import Table
from odk_mcp.services.aggregation.exports.domain.rows import (
    Labeller,
    RootRow,
    Row,
    text_cells,
    typed_cells,
)
from odk_mcp.services.aggregation.exports.writers.archive import (
    MediaFile,
    csv_member,
    media_member,
    zip_stream,
)
from odk_mcp.services.aggregation.exports.writers.csv_text import CsvEncoder
from odk_mcp.services.aggregation.exports.writers.geojson import HEAD, TAIL, GeoJsonEncoder
from odk_mcp.services.forms import Field

Progress = Callable[[int], Awaitable[None]]


class RowSource(Protocol):
    def batches(self, table: Table) -> AsyncIterable[Sequence[Row]]:
        """The table's rows in export order, a batch at a time."""
        ...


async def _no_progress(rows: int) -> None:
    return None


def headers(table: Table, labeller: Labeller | None) -> list[str]:
    """Central's headers, or question (and choice) labels when asked for labels."""
    if labeller is None:
        return table.headers
    return [labeller.header(c) for c in table.columns]


async def csv_chunks(
    table: Table, source: RowSource, progress: Progress = _no_progress, labeller: Labeller | None = None
) -> AsyncIterator[bytes]:
    encoder = CsvEncoder()
    yield encoder.encode([headers(table, labeller)])
    async for batch in source.batches(table):
        if labeller is None:
            yield encoder.encode([text_cells(table, row) for row in batch])
        else:
            yield encoder.encode([_labelled_text(table, row, labeller) for row in batch])
        await progress(len(batch))


def _labelled_text(table: Table, row: Row, labeller: Labeller) -> list[str | int | float | None]:
    cells = typed_cells(table, row, labeller, keep_text=True)
    text = text_cells(table, row)
    # Labels change only choice fields; everything else keeps Central's text rendering.
    return [t if not isinstance(c, str) or c == t else c for c, t in zip(cells, text, strict=True)]


ChunkSource = Callable[[], AsyncIterable[bytes]]


def zip_of(
    members: Sequence[tuple[str, ChunkSource]],
    media: AsyncIterable[MediaFile] | None = None,
    blobs: BlobStore | None = None,
    optional: tuple[str, ChunkSource] | None = None,
) -> AsyncIterable[bytes]:
    """A zip of the named byte streams (each opened only when its turn comes), then the
    `optional` one if it yields any bytes (the client audit logs), then the media files (when
    given, from `blobs`)."""
    now = datetime.now(UTC)

    async def entries() -> AsyncIterator[tuple[object, ...]]:
        for name, open_chunks in members:
            yield csv_member(name, open_chunks(), now)
        if optional is not None:
            name, open_chunks = optional
            chunks = aiter(open_chunks())
            head = await anext(chunks, None)
            if head is not None:
                yield csv_member(name, _starting_with(head, chunks), now)
        if media is not None and blobs is not None:
            async for item in media:
                yield media_member(item, blobs, now)

    return zip_stream(entries())  # type: ignore[arg-type]


async def _starting_with(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in rest:
        yield chunk


def csv_zip(
    tables: Sequence[Table],
    source: RowSource,
    media: AsyncIterable[MediaFile] | None = None,
    blobs: BlobStore | None = None,
    progress: Progress = _no_progress,
    labeller: Labeller | None = None,
    optional: tuple[str, ChunkSource] | None = None,
) -> AsyncIterable[bytes]:
    """The `.csv.zip` rendered in Python: every table's CSV, then the media files."""

    def member(table: Table) -> tuple[str, ChunkSource]:
        # Only the root table's rows count as progress (one row per submission).
        counted = progress if table.is_root else _no_progress
        return table.file_name, lambda: csv_chunks(table, source, counted, labeller)

    return zip_of([member(t) for t in tables], media, blobs, optional)


async def geojson_chunks(
    table: Table,
    source: RowSource,
    geo: Field | None,
    progress: Progress = _no_progress,
    labeller: Labeller | None = None,
) -> AsyncIterator[bytes]:
    encoder = GeoJsonEncoder(headers(table, labeller), geo)
    yield HEAD
    async for batch in source.batches(table):
        features = []
        for row in batch:
            assert isinstance(row, RootRow)
            value = row.data.get(geo.path) if geo is not None else None
            features.append((row.instance_id, value, typed_cells(table, row, labeller, keep_text=True)))
        yield encoder.encode(features)
        await progress(len(batch))
    yield TAIL


async def write_xlsx(
    path: Path,
    tables: Sequence[Table],
    source: RowSource,
    progress: Progress = _no_progress,
    labeller: Labeller | None = None,
) -> None:
    from odk_mcp.services.aggregation.exports.writers.xlsx import XlsxWriter

    writer = XlsxWriter(path, tmpdir=path.parent)
    try:
        for table in tables:
            await anyio.to_thread.run_sync(writer.start_table, table.name, headers(table, labeller))
            async for batch in source.batches(table):
                cells = [typed_cells(table, row, labeller, keep_text=True) for row in batch]
                await anyio.to_thread.run_sync(writer.write, cells)
                if table.is_root:
                    await progress(len(batch))
    finally:
        await anyio.to_thread.run_sync(writer.close)


async def write_parquet(
    path: Path,
    table: Table,
    source: RowSource,
    progress: Progress = _no_progress,
    labeller: Labeller | None = None,
) -> None:
    from odk_mcp.services.aggregation.exports.writers.parquet import ParquetWriter

    writer = ParquetWriter(path, table, headers(table, labeller))
    try:
        async for batch in source.batches(table):
            cells = [typed_cells(table, row, labeller) for row in batch]
            await anyio.to_thread.run_sync(writer.write, cells)
            await progress(len(batch))
    finally:
        await anyio.to_thread.run_sync(writer.close)


async def write_sav(
    path: Path,
    table: Table,
    source: RowSource,
    labeller: Labeller,
    max_rows: int,
    progress: Progress = _no_progress,
    file_label: str = "",
) -> None:
    from odk_mcp.services.aggregation.exports.writers.spss import SavWriter

    writer = SavWriter(path, table, labeller, file_label)
    count = 0
    async for batch in source.batches(table):
        count += len(batch)
        if count > max_rows:
            raise Problem(
                problems.EXPORT_TOO_LARGE,
                f"An SPSS export holds at most {max_rows} submissions; narrow it with $filter"
                " or export CSV, XLSX or Parquet.",
                {"format": "sav", "max": max_rows},
            )
        # SPSS keeps choice names as values and shows labels through value labels.
        writer.write([typed_cells(table, row) for row in batch])
        await progress(len(batch))
    await anyio.to_thread.run_sync(writer.close)
