"""Export jobs: a large export runs in the background while its handle reports progress, and
its file downloads once ready.

- The handle is a random token shown once; only its hash is stored. A job belongs to the actor
  who created it: anyone else gets 404.1 for its handle.
- Permission, options and filter are checked when the job is created (the same `prepare` the
  direct downloads use); the runner then exports as the server.
- Jobs are rows in `aggregation.export_jobs`, claimed with `FOR UPDATE SKIP LOCKED`, so several
  server processes share the queue. A running job beats a heartbeat; a job whose heartbeat
  stopped (its process crashed) is claimed again and restarted from the beginning, up to
  `max_attempts` times, then marked failed with a reason. No job stays `running` forever.
- Files live under `<data_dir>/exports/`; expired jobs lose their file and show `expired`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.engine import RowMapping

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import SYSTEM, Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.tokens import hash_token, new_token
from odk_mcp.services.aggregation.exports.domain.options import ExportFormat, parse_options
from odk_mcp.services.aggregation.exports.facade import Exports, PreparedExport

log = structlog.get_logger(__name__)

EXPORT_NOT_READY = problems.EXPORT_NOT_READY


@dataclass(frozen=True)
class JobSettings:
    directory: Path
    ttl: timedelta
    stale_after: timedelta
    max_attempts: int
    poll_seconds: float


@dataclass(frozen=True)
class JobView:
    row: RowMapping

    def to_json(self) -> dict[str, Any]:
        r = self.row
        error = r["error"]
        return {
            "id": str(r["id"]),
            "status": r["status"],
            "format": r["format"],
            "projectId": r["project_id"],
            "xmlFormId": r["xml_form_id"],
            "draft": r["draft"],
            "options": r["options"],
            "progress": {"rows": r["rows_done"], "total": r["rows_total"]},
            "attempts": r["attempts"],
            "fileName": r["file_name"],
            "size": r["file_size"],
            "error": error,
            "createdAt": iso(r["created_at"]),
            "startedAt": iso(r["started_at"]),
            "finishedAt": iso(r["finished_at"]),
            "expiresAt": iso(r["expires_at"]),
        }


_CLAIM = text(
    """
    UPDATE aggregation.export_jobs SET status = 'running', attempts = attempts + 1,
        started_at = now(), heartbeat_at = now(), rows_done = 0
    WHERE id = (
        SELECT id FROM aggregation.export_jobs
        WHERE status = 'queued' OR (status = 'running' AND heartbeat_at < now() - :stale)
        ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING *
    """
)


class ExportJobs:
    def __init__(self, db: Database, exports: Exports, settings: JobSettings) -> None:
        self._db = db
        self._exports = exports
        self._settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def path(self, job_id: uuid.UUID | str) -> Path:
        return self._settings.directory / f"{job_id}.export"

    # -- requests -------------------------------------------------------------------------
    async def create(
        self, actor: Actor, project_id: int, xml_form_id: str, draft: bool, body: dict[str, Any]
    ) -> tuple[str, JobView]:
        """Check everything a direct export would, then queue the job; returns the handle
        (shown only now) and the job."""
        unknown = set(body) - {"format", "options"}
        if unknown:
            raise Problem(
                problems.UNEXPECTED_ATTRIBUTE,
                f"Unknown field {sorted(unknown)[0][:100]}.",
                {"field": sorted(unknown)[0][:100]},
            )
        if "format" not in body:
            raise Problem(problems.MISSING_PARAMETER, details={"field": "format"})
        fmt = ExportFormat.parse(body["format"])
        raw_options = body.get("options") or {}
        if not isinstance(raw_options, dict):
            raise Problem(problems.INVALID_DATA_TYPE, "options must be an object.", {"field": "options"})
        options = parse_options(raw_options, strict=True)
        if actor.id <= 0:
            raise Problem(problems.INSUFFICIENT_RIGHTS, "Export jobs belong to a user or app user.")
        prepared = await self._exports.prepare(actor, project_id, xml_form_id, draft, fmt, options)
        total = await self._exports.count(prepared)
        handle = new_token()
        job_id = uuid.uuid4()
        async with self._db.transaction() as conn:
            row = (
                (
                    await conn.execute(
                        text(
                            """
                            INSERT INTO aggregation.export_jobs (id, handle_hash, actor_id, project_id,
                                xml_form_id, draft, format, options, status, rows_total, file_name,
                                created_at, expires_at)
                            VALUES (:id, :hash, :actor, :project, :form, :draft, :format,
                                CAST(:options AS jsonb), 'queued', :total, :file, now(), now() + :ttl)
                            RETURNING *
                            """
                        ),
                        {
                            "id": job_id,
                            "hash": hash_token(handle),
                            "actor": actor.id,
                            "project": project_id,
                            "form": xml_form_id,
                            "draft": draft,
                            "format": fmt.value,
                            "options": _json(options.to_json()),
                            "total": total,
                            "file": prepared.file_name,
                            "ttl": self._settings.ttl,
                        },
                    )
                )
                .mappings()
                .one()
            )
            if not draft:  # audited like a direct export, in the job's transaction
                await record_audit(
                    conn,
                    actor,
                    "form.submission.export",
                    "form",
                    xml_form_id,
                    project_id=project_id,
                    details={"format": fmt.value, "options": options.to_json(), "job": str(job_id)},
                )
        self._wake.set()
        return handle, JobView(row)

    async def get(self, actor: Actor, handle: str) -> JobView:
        if actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)
        async with self._db.read() as conn:
            row = (
                (
                    await conn.execute(
                        text("SELECT * FROM aggregation.export_jobs WHERE handle_hash = :hash"),
                        {"hash": hash_token(handle)},
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["actor_id"] != actor.id:
            raise Problem(problems.NOT_FOUND)
        return JobView(row)

    async def file(self, actor: Actor, handle: str) -> tuple[JobView, Path]:
        """The finished file of one's own job (409.31 while it is not ready)."""
        job = await self.get(actor, handle)
        status = job.row["status"]
        if status == "expired":
            raise Problem(problems.NOT_FOUND, "The export has expired; start a new one.")
        if status != "done":
            raise Problem(EXPORT_NOT_READY, details={"status": status, "error": job.row["error"]})
        path = self.path(job.row["id"])
        if not path.is_file():
            raise Problem(problems.NOT_FOUND, "The export file is gone; start a new one.")
        return job, path

    # -- the runner -----------------------------------------------------------------------
    def start(self) -> None:
        """Run jobs in a background task (in every serving process; claims never collide)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="export-jobs")

    async def stop(self) -> None:
        """Stop now: a job in hand goes back to the queue and restarts on the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def run_forever(self) -> None:
        self._settings.directory.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                await self.sweep()
                if not await self.run_one():
                    self._wake.clear()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database went away for a moment: try again after a pause, never die.
                log.exception("export_jobs_loop_error")
                await asyncio.sleep(self._settings.poll_seconds)

    async def run_one(self) -> bool:
        """Claim and run one job; False when none was waiting."""
        row = await self.claim()
        if row is None:
            return False
        await self.execute(row)
        return True

    async def claim(self) -> RowMapping | None:
        async with self._db.transaction() as conn:
            row = (await conn.execute(_CLAIM, {"stale": self._settings.stale_after})).mappings().first()
        if row is not None and row["attempts"] > self._settings.max_attempts:
            await self._finish(
                row["id"],
                "failed",
                error={
                    "code": problems.INTERNAL.code,
                    "message": f"The export was interrupted {self._settings.max_attempts} times"
                    " (the server stopped while it ran); start it again.",
                },
            )
            return None
        return row

    async def execute(self, row: RowMapping) -> None:
        job_id = row["id"]
        part = self.path(job_id).with_suffix(".part")
        try:
            self._settings.directory.mkdir(parents=True, exist_ok=True)
            options = parse_options(row["options"])
            prepared = await self._exports.prepare(
                SYSTEM,
                row["project_id"],
                row["xml_form_id"],
                row["draft"],
                ExportFormat(row["format"]),
                options,
            )
            beat = asyncio.create_task(self._heartbeat(job_id))
            try:
                await self._write(job_id, prepared, part)
            finally:
                beat.cancel()
                with suppress(asyncio.CancelledError):
                    await beat
            size = part.stat().st_size
            part.replace(self.path(job_id))
            await self._finish(job_id, "done", size=size)
        except asyncio.CancelledError:
            part.unlink(missing_ok=True)
            await asyncio.shield(self._requeue(job_id))
            raise
        except Problem as problem:
            part.unlink(missing_ok=True)
            await self._finish(job_id, "failed", error={"code": problem.code, "message": problem.message})
        except Exception:
            part.unlink(missing_ok=True)
            log.exception("export_job_failed", job=str(job_id))
            await self._finish(
                job_id, "failed", error={"code": problems.INTERNAL.code, "message": problems.INTERNAL.message}
            )

    async def _write(self, job_id: uuid.UUID, prepared: PreparedExport, part: Path) -> None:
        done = 0

        async def progress(rows: int) -> None:
            nonlocal done
            done += rows
            async with self._db.transaction() as conn:
                await conn.execute(
                    text("UPDATE aggregation.export_jobs SET rows_done = :n WHERE id = :id"),
                    {"n": done, "id": job_id},
                )

        await self._exports.write(prepared, part, progress)

    async def _heartbeat(self, job_id: uuid.UUID) -> None:
        interval = max(self._settings.stale_after.total_seconds() / 4, 0.05)
        while True:
            await asyncio.sleep(interval)
            async with self._db.transaction() as conn:
                await conn.execute(
                    text("UPDATE aggregation.export_jobs SET heartbeat_at = now() WHERE id = :id"),
                    {"id": job_id},
                )

    async def _requeue(self, job_id: uuid.UUID) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                text(
                    "UPDATE aggregation.export_jobs SET status = 'queued', attempts = attempts - 1,"
                    " rows_done = 0 WHERE id = :id AND status = 'running'"
                ),
                {"id": job_id},
            )

    async def _finish(
        self, job_id: uuid.UUID, status: str, *, size: int | None = None, error: dict[str, Any] | None = None
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                text(
                    """
                    UPDATE aggregation.export_jobs SET status = :status, file_size = :size,
                        error = CAST(:error AS jsonb), finished_at = now(), expires_at = now() + :ttl
                    WHERE id = :id
                    """
                ),
                {
                    "status": status,
                    "size": size,
                    "error": None if error is None else _json(error),
                    "ttl": self._settings.ttl,
                    "id": job_id,
                },
            )

    async def sweep(self, now: datetime | None = None) -> int:
        """Expire finished jobs past their time and delete their files; returns how many."""
        async with self._db.transaction() as conn:
            expired = (
                (
                    await conn.execute(
                        text(
                            """
                        UPDATE aggregation.export_jobs SET status = 'expired'
                        WHERE status IN ('done', 'failed', 'queued') AND expires_at < COALESCE(:now, now())
                        RETURNING id
                        """
                        ),
                        {"now": now},
                    )
                )
                .scalars()
                .all()
            )
        for job_id in expired:
            self.path(job_id).unlink(missing_ok=True)
        await asyncio.to_thread(self._sweep_leftovers, now)
        return len(expired)

    def _sweep_leftovers(self, now: datetime | None) -> None:
        """Files a crashed process left behind: spooled downloads and partial job files older
        than the jobs' lifetime (live ones are minutes old, and spooled ones are unlinked as
        soon as they are being sent)."""
        cutoff = (now or datetime.now(UTC)) - self._settings.ttl
        for pattern, folder in (
            ("*", self._settings.directory / "spool"),
            ("*.part", self._settings.directory),
        ):
            if not folder.is_dir():
                continue
            for leftover in folder.glob(pattern):
                with suppress(FileNotFoundError):
                    if datetime.fromtimestamp(leftover.stat().st_mtime, UTC) < cutoff and leftover.is_file():
                        leftover.unlink()


def _json(value: Any) -> str:
    return json.dumps(value)
