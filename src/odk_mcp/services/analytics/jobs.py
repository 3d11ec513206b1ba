"""Analysis jobs: full quality scans, enumerator tables and insight reports run in the
background while a handle reports their progress, and the result is fetched once ready.

- The handle is a random token shown once; only its hash is stored. A job belongs to the actor
  who created it (anyone else gets 404.1), and reading its status or result checks again that
  the actor may still read the form's submissions (403.1 once that right is gone).
- Jobs are rows in `analytics.jobs` (PostgreSQL, so they survive restarts and are shared by
  every server process). The process that receives the request starts the job at once when it
  has a free slot (`concurrency` per process); otherwise, or after a crash, a process's runner
  claims it with `FOR UPDATE SKIP LOCKED`. A running job beats a heartbeat carrying its
  progress; one whose heartbeat stopped (its process died) is claimed again and rerun from the
  start, up to `max_attempts` starts, then failed with a reason. Only the attempt that holds
  the job may record its outcome, in one transaction with what the analysis stores, so a
  rerun never stores a scan twice.
- Results (JSON, or the report's bytes) live in the row until `ttl` after the job finished;
  then the job shows `expired` and its result is gone.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import RowMapping

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.tokens import hash_token, new_token
from odk_mcp.services.analytics.adapters import jobs_store
from odk_mcp.services.analytics.analyses import Analyses, AnalysisKind
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.progress import Progress

log = structlog.get_logger(__name__)

UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class JobSettings:
    ttl: timedelta
    stale_after: timedelta
    max_attempts: int
    poll_seconds: float
    concurrency: int


@dataclass(frozen=True)
class JobView:
    row: RowMapping
    live: Progress | None = None  # the progress of a job running in this process

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(str(self.row["id"]))

    @property
    def status(self) -> str:
        return str(self.row["status"])

    @property
    def kind(self) -> AnalysisKind:
        return AnalysisKind(self.row["kind"])

    def to_json(self, handle: str | None = None) -> dict[str, Any]:
        r = self.row
        progress = (
            self.live.to_json()
            if self.live is not None and r["status"] == "running"
            else {"stage": r["stage"], "done": r["steps_done"], "total": r["steps_total"]}
        )
        out: dict[str, Any] = {
            "id": str(r["id"]),
            "kind": r["kind"],
            "status": r["status"],
            "projectId": r["project_id"],
            "xmlFormId": r["xml_form_id"],
            "progress": progress,
            "attempts": r["attempts"],
            "error": r["error"],
            "size": r["size"],
            "createdAt": iso(r["created_at"]),
            "startedAt": iso(r["started_at"]),
            "finishedAt": iso(r["finished_at"]),
            "expiresAt": iso(r["expires_at"]),
        }
        if handle is not None:
            out["handle"] = handle
            out["links"] = links(handle)
        return out

    def failure(self) -> Problem:
        """The problem a failed job recorded, to raise again to a caller waiting for it."""
        error = self.row["error"] or {}
        kind = next(
            (k for k in problems.CATALOGUE.values() if k.code == error.get("code")), problems.INTERNAL
        )
        return Problem(kind, error.get("message"), error.get("details") or {})


@dataclass(frozen=True)
class Running:
    """A job this process is running: its task, live progress and the attempt it holds."""

    task: asyncio.Task[None]
    progress: Progress
    attempt: int


def links(handle: str) -> dict[str, str]:
    return {"status": f"/v1/analytics/jobs/{handle}", "result": f"/v1/analytics/jobs/{handle}/result"}


class AnalysisJobs:
    def __init__(self, db: Database, frames: FormFrames, analyses: Analyses, settings: JobSettings) -> None:
        self._db = db
        self._frames = frames
        self._analyses = analyses
        self._settings = settings
        self._running: dict[uuid.UUID, Running] = {}
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    # -- requests -------------------------------------------------------------------------
    async def create(self, actor: Actor, project_id: int, xml_form_id: str, kind: str) -> tuple[str, JobView]:
        """Check the actor may read the form's submissions, queue the job and start it here if
        a slot is free; returns the handle (shown only now) and the job."""
        parsed = AnalysisKind.parse(kind)
        await self._frames.form(actor, project_id, xml_form_id)
        if actor.id <= 0:
            raise Problem(problems.INSUFFICIENT_RIGHTS, "Analysis jobs belong to a user or app user.")
        handle = new_token()
        async with self._db.transaction() as conn:
            row = await jobs_store.insert(
                conn,
                uuid.uuid4(),
                hash_token(handle),
                actor.id,
                project_id,
                xml_form_id,
                parsed.value,
                self._settings.ttl,
            )
        job = JobView(row)
        if len(self._running) < self._settings.concurrency:
            async with self._db.transaction() as conn:
                started = await jobs_store.start(conn, job.id)
            if started is not None:
                self._spawn(started)
                job = JobView(started, self._running[job.id].progress)
        else:
            self._wake.set()
        return handle, job

    async def get(self, actor: Actor, handle: str) -> JobView:
        """One's own job, if one may still read the form's submissions."""
        if actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)
        async with self._db.read() as conn:
            row = await jobs_store.by_handle(conn, hash_token(handle))
        if row is None or row["actor_id"] != actor.id:
            raise Problem(problems.NOT_FOUND)
        await self._frames.form(actor, row["project_id"], row["xml_form_id"])
        return self._view(row)

    async def result(self, actor: Actor, handle: str) -> tuple[JobView, bytes | None]:
        """A finished job and, for reports, its file (409.32 while it is not done)."""
        return await self.outcome(await self.get(actor, handle))

    async def outcome(self, job: JobView) -> tuple[JobView, bytes | None]:
        if job.status == "expired":
            raise Problem(problems.NOT_FOUND, "The analysis has expired; start a new one.")
        if job.status != "done":
            details = {"status": job.status, "error": job.row["error"]}
            raise Problem(problems.ANALYSIS_NOT_READY, details=details)
        if job.row["result"] is not None:
            return job, None
        async with self._db.read() as conn:
            content = await jobs_store.body(conn, job.id)
        if content is None:
            raise Problem(problems.NOT_FOUND, "The analysis has expired; start a new one.")
        return job, content

    async def wait(self, job: JobView, seconds: float) -> JobView:
        """The job once finished, or as it is after `seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while job.status in UNFINISHED and (remaining := deadline - loop.time()) > 0:
            here = self._running.get(job.id)
            if here is not None:
                await asyncio.wait({here.task}, timeout=remaining)
            else:  # queued, or running in another process
                await asyncio.sleep(min(remaining, 0.25))
            async with self._db.read() as conn:
                row = await jobs_store.by_id(conn, job.id)
            if row is None:
                raise Problem(problems.NOT_FOUND)
            job = self._view(row)
        return job

    def _view(self, row: RowMapping) -> JobView:
        here = self._running.get(uuid.UUID(str(row["id"])))
        return JobView(row, here.progress if here is not None else None)

    # -- the runner -----------------------------------------------------------------------
    def start(self) -> None:
        """Claim queued and abandoned jobs in a background task (in every serving process)."""
        if self._runner is None:
            self._runner = asyncio.create_task(self.run_forever(), name="analysis-jobs")

    async def stop(self) -> None:
        """Stop now: jobs in hand go back to the queue and rerun on the next start."""
        runner, self._runner = self._runner, None
        held, self._running = self._running, {}
        tasks = [r.task for r in held.values()] + ([runner] if runner is not None else [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        # Also the jobs whose task was cancelled before it began (no-op for finished ones).
        async with self._db.transaction() as conn:
            for job_id, running in held.items():
                await jobs_store.requeue(conn, job_id, running.attempt)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.sweep()
                while len(self._running) < self._settings.concurrency and (row := await self.claim()):
                    self._spawn(row)
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database went away for a moment: try again after a pause, never die.
                log.exception("analysis_jobs_loop_error")
                await asyncio.sleep(self._settings.poll_seconds)

    async def run_one(self) -> bool:
        """Claim one job and run it to the end here; False when none was waiting."""
        row = await self.claim()
        if row is None:
            return False
        self._spawn(row)
        await asyncio.wait({self._running[uuid.UUID(str(row["id"]))].task})
        return True

    async def claim(self) -> RowMapping | None:
        async with self._db.transaction() as conn:
            row = await jobs_store.claim(conn, self._settings.stale_after, list(self._running))
            if row is None or row["attempts"] <= self._settings.max_attempts:
                return row
            await jobs_store.finish(
                conn,
                row["id"],
                row["attempts"],
                "failed",
                self._settings.ttl,
                error={
                    "code": problems.INTERNAL.code,
                    "message": f"The analysis was interrupted {self._settings.max_attempts} times"
                    " (the server stopped while it ran); start it again.",
                },
            )
        return None

    def _spawn(self, row: RowMapping) -> None:
        job_id = uuid.UUID(str(row["id"]))
        progress = Progress("starting", 0, None)
        task = asyncio.create_task(self._execute(row, progress), name=f"analysis-job-{job_id}")
        self._running[job_id] = Running(task, progress, int(row["attempts"]))

    async def _execute(self, row: RowMapping, progress: Progress) -> None:
        job_id, attempt = uuid.UUID(str(row["id"])), int(row["attempts"])
        beat = asyncio.create_task(self._heartbeat(job_id, attempt, progress))
        try:
            output = await self._analyses.run(
                AnalysisKind(row["kind"]), row["project_id"], row["xml_form_id"], progress
            )
            async with self._db.transaction() as conn:
                held = await jobs_store.finish(
                    conn,
                    job_id,
                    attempt,
                    "done",
                    self._settings.ttl,
                    result=output.result,
                    content=output.body,
                    media_type=output.media_type,
                )
                if held and output.commit is not None:
                    await output.commit(conn)
        except Problem as problem:
            error = {"code": problem.code, "message": problem.message, "details": problem.details}
            await self._fail(job_id, attempt, error)
        except Exception:
            log.exception("analysis_job_failed", job=str(job_id))
            internal = {"code": problems.INTERNAL.code, "message": problems.INTERNAL.message}
            await self._fail(job_id, attempt, internal)
        finally:
            beat.cancel()
            with suppress(asyncio.CancelledError):
                await beat
            if (mine := self._running.get(job_id)) is not None and mine.attempt == attempt:
                del self._running[job_id]
            self._wake.set()

    async def _heartbeat(self, job_id: uuid.UUID, attempt: int, progress: Progress) -> None:
        interval = max(min(self._settings.stale_after.total_seconds() / 4, 1.0), 0.05)
        while True:
            await asyncio.sleep(interval)
            async with self._db.transaction() as conn:
                await jobs_store.beat(conn, job_id, attempt, progress.stage, progress.done, progress.total)

    async def _fail(self, job_id: uuid.UUID, attempt: int, error: dict[str, Any]) -> None:
        async with self._db.transaction() as conn:
            await jobs_store.finish(conn, job_id, attempt, "failed", self._settings.ttl, error=error)

    async def sweep(self, now: datetime | None = None) -> int:
        """Expire finished jobs past their time (their results are deleted); returns how many."""
        async with self._db.transaction() as conn:
            return await jobs_store.expire(conn, now)
