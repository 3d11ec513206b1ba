"""Exports of submission data out of the read model (public surface of the exports part of
the aggregation service): CSV, Central's `.csv.zip` with media, XLSX, GeoJSON, SPSS `.sav`
and Parquet, streamed or written as background jobs. See docs/exports.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation.exports.domain.options import ExportFormat, ExportOptions, parse_options
from odk_mcp.services.aggregation.exports.downloads import content_disposition, file_chunks
from odk_mcp.services.aggregation.exports.facade import ExportLimits, Exports, PreparedExport
from odk_mcp.services.aggregation.exports.jobs import ExportJobs, JobSettings
from odk_mcp.services.aggregation.exports.reading import AttachmentLookup, NameLookup
from odk_mcp.services.aggregation.exports.service import ExportsService
from odk_mcp.services.aggregation.reader import ReadModel


@dataclass(frozen=True)
class ExportSettings:
    data_dir: Path
    sav_max_rows: int
    batch_size: int
    max_streams: int
    job_ttl: timedelta
    job_stale_after: timedelta
    job_max_attempts: int
    job_poll_seconds: float


def build_exports_service(
    db: Database,
    read_model: ReadModel,
    names: NameLookup,
    attachments: AttachmentLookup,
    blobs: BlobStore,
    settings: ExportSettings,
) -> ExportsService:
    exports = Exports(
        read_model,
        names,
        attachments,
        blobs,
        ExportLimits(settings.sav_max_rows, settings.batch_size, settings.max_streams),
    )
    jobs = ExportJobs(
        db,
        exports,
        JobSettings(
            directory=settings.data_dir / "exports",
            ttl=settings.job_ttl,
            stale_after=settings.job_stale_after,
            max_attempts=settings.job_max_attempts,
            poll_seconds=settings.job_poll_seconds,
        ),
    )
    return ExportsService(exports=exports, jobs=jobs, db=db, spool=settings.data_dir / "exports" / "spool")


__all__ = [
    "ExportFormat",
    "ExportJobs",
    "ExportOptions",
    "ExportSettings",
    "Exports",
    "ExportsService",
    "PreparedExport",
    "build_exports_service",
    "content_disposition",
    "file_chunks",
    "parse_options",
]
