"""The exports facade: every way out of the read model into a file, for HTTP, jobs and the CLI.

`prepare` does everything that can refuse the request (permission, the form, options, the
filter, the language, the geometry field, the SPSS row cap) before a byte is produced, so a
streamed response never starts and then fails on bad input. `stream` yields the bytes of the
streaming formats; `write` writes any format to a file (the spooled formats over HTTP, and
every format in export jobs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import anyio

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.exports import render
from odk_mcp.services.aggregation.exports.copy_csv import CopyCsv
from odk_mcp.services.aggregation.exports.domain.layout import (
    Table,
    build_tables,
    geometry_field,
    sanitize_filename,
    select_multiple_paths,
)
from odk_mcp.services.aggregation.exports.domain.options import ExportFormat, ExportOptions
from odk_mcp.services.aggregation.exports.domain.rows import Labeller
from odk_mcp.services.aggregation.exports.reading import AttachmentLookup, NameLookup, ReadModelSource
from odk_mcp.services.aggregation.exports.writers.client_audits import client_audit_chunks
from odk_mcp.services.aggregation.reader import FormData, ReadModel
from odk_mcp.services.forms import Field, FormSchema

# Where an XLSForm `audit` question lives; ODK Collect attaches its log as `audit.csv`.
AUDIT_PATH = "/meta/audit"

STREAMED = frozenset({ExportFormat.CSV, ExportFormat.CSV_ZIP, ExportFormat.GEOJSON})


@dataclass(frozen=True)
class ExportLimits:
    sav_max_rows: int
    batch_size: int = 2000
    max_streams: int = 4


@dataclass(frozen=True)
class PreparedExport:
    form: FormData
    format: ExportFormat
    options: ExportOptions
    tables: tuple[Table, ...]
    source: ReadModelSource
    copy: CopyCsv
    labeller: Labeller | None
    geometry: Field | None

    @property
    def file_name(self) -> str:
        base = self.tables[0].file_name.removesuffix(".csv")
        if self.format is ExportFormat.CSV_ZIP and self.options.attachments:
            return f"{base}.zip"  # Central names the full archive `<formId>.zip`
        return f"{base}.{self.format.value}"

    @property
    def streamed(self) -> bool:
        return self.format in STREAMED


def _languages(schema: FormSchema) -> set[str]:
    names = set(schema.languages)
    return names | {n[n.rindex("(") + 1 : -1] for n in names if n.endswith(")") and "(" in n}


class Exports:
    def __init__(
        self,
        read_model: ReadModel,
        names: NameLookup,
        attachments: AttachmentLookup,
        blobs: BlobStore,
        limits: ExportLimits,
    ) -> None:
        self._read_model = read_model
        self._names = names
        self._attachments = attachments
        self._blobs = blobs
        self._limits = limits
        self._streams = asyncio.Semaphore(limits.max_streams)

    async def prepare(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        draft: bool,
        fmt: ExportFormat,
        options: ExportOptions,
    ) -> PreparedExport:
        form = await self._read_model.form(actor, project_id, xml_form_id, draft)
        if form.schema is None:
            raise Problem(problems.NOT_FOUND)
        schema = form.schema
        if options.deleted_fields:
            schema = replace(schema, fields=form.all_fields)
        # The filter is compiled here: a bad one is a 400 before anything streams.
        conditions = self._read_model.submission_conditions(form, options.filter)
        source = ReadModelSource(self._read_model.db, conditions, self._names, self._limits.batch_size)
        if options.lang is not None and options.lang not in _languages(schema):
            raise Problem(
                problems.UNEXPECTED_VALUE,
                "The form has no such language.",
                {"field": "lang", "value": options.lang, "languages": sorted(schema.languages)},
            )
        geometry = None
        if fmt is ExportFormat.GEOJSON:
            geometry = geometry_field(schema, options.geometry)
            if options.geometry is not None and geometry is None:
                raise Problem(
                    problems.UNEXPECTED_VALUE,
                    "geometry must name a geopoint, geotrace or geoshape field outside repeats.",
                    {"field": "geometry", "value": options.geometry},
                )
        values = None
        if options.split_select_multiples:
            values = await source.select_values(select_multiple_paths(schema))
        root_only = fmt not in (ExportFormat.CSV_ZIP, ExportFormat.XLSX)
        tables = build_tables(
            schema, group_paths=options.group_paths, select_values=values, root_only=root_only
        )
        if fmt is ExportFormat.SAV:
            count = await source.count()
            if count > self._limits.sav_max_rows:
                raise Problem(
                    problems.EXPORT_TOO_LARGE,
                    f"An SPSS export holds at most {self._limits.sav_max_rows} submissions; narrow it with"
                    " $filter or export CSV, XLSX or Parquet.",
                    {"format": "sav", "max": self._limits.sav_max_rows, "submissions": count},
                )
        labeller = Labeller(options.lang) if options.labels or fmt is ExportFormat.SAV else None
        copy = CopyCsv(self._read_model.db, conditions, self._names, self._streams)
        return PreparedExport(form, fmt, options, tuple(tables), source, copy, labeller, geometry)

    def stream(self, export: PreparedExport, progress: render.Progress | None = None) -> AsyncIterable[bytes]:
        """The bytes of a streamed format (csv, csv.zip, geojson)."""
        report = progress or _ignore
        labeller = export.labeller if export.options.labels else None
        media = None
        if export.format is ExportFormat.CSV_ZIP and export.options.attachments:
            media = export.source.media(self._attachments)
        audits = self._client_audits(export) if export.format is ExportFormat.CSV_ZIP else None
        if labeller is None and export.format is not ExportFormat.GEOJSON:
            # The fast path: PostgreSQL writes the CSV (see copy_csv.py).
            if export.format is ExportFormat.CSV:
                root = export.tables[0]
                return export.copy.chunks(root, root.headers, report)
            members = [
                (t.file_name, partial(export.copy.chunks, t, t.headers, report if t.is_root else None))
                for t in export.tables
            ]
            return render.zip_of(members, media, self._blobs, audits)
        if export.format is ExportFormat.CSV:
            return render.csv_chunks(export.tables[0], export.source, report, labeller)
        if export.format is ExportFormat.GEOJSON:
            return render.geojson_chunks(export.tables[0], export.source, export.geometry, report, labeller)
        if export.format is ExportFormat.CSV_ZIP:
            return render.csv_zip(export.tables, export.source, media, self._blobs, report, labeller, audits)
        raise ValueError(f"{export.format} is not a streamed format")

    def _client_audits(self, export: PreparedExport) -> tuple[str, render.ChunkSource] | None:
        """`<formId> - audit.csv`: the merged client audit logs, for a form with an `audit`
        question (Central's name and place in the zip); left out when no submission has one."""
        schema = export.form.schema
        if schema is None or not any(f.path == AUDIT_PATH and f.binary for f in schema.fields):
            return None
        name = sanitize_filename(f"{schema.xml_form_id} - audit.csv")
        return name, lambda: client_audit_chunks(export.source.client_audits(self._attachments), self._blobs)

    async def write(
        self, export: PreparedExport, path: Path, progress: render.Progress | None = None
    ) -> None:
        """Write the export to `path`, in any format."""
        report = progress or _ignore
        labeller = export.labeller if export.options.labels else None
        root = export.tables[0]
        if export.format is ExportFormat.XLSX:
            await render.write_xlsx(path, export.tables, export.source, report, labeller)
        elif export.format is ExportFormat.PARQUET:
            await render.write_parquet(path, root, export.source, report, labeller)
        elif export.format is ExportFormat.SAV:
            assert export.labeller is not None
            title = export.form.schema.title if export.form.schema is not None else ""
            await render.write_sav(
                path, root, export.source, export.labeller, self._limits.sav_max_rows, report, title
            )
        else:
            async with await anyio.open_file(path, "wb") as out:
                async for chunk in self.stream(export, report):
                    await out.write(chunk)

    async def count(self, export: PreparedExport) -> int:
        return await export.source.count()


async def _ignore(rows: int) -> None:
    return None


ProgressCallback = Callable[[int], Awaitable[None]]
