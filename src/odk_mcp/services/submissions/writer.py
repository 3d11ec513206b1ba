"""Group commit for new submissions: many requests, one transaction, every answer after the commit.

A durable commit costs about the same CPU and fsync whether it holds one submission or two
hundred, so requests that bring a NEW submission hand their prepared rows to this writer
instead of opening a transaction each. The writer takes whatever is queued (up to `max_batch`),
writes it with a few set-based statements (arrays of binary parameters through `unnest`) and
commits; only then is each waiting request answered. A 201 still means the submission, its
version, attachment rows, audit row and `submission.received` event are committed together
(synchronous_commit stays on). Under load batches grow by themselves while a commit is in flight;
a lone request is written at once, in a batch of one (no timer unless `max_wait_seconds` > 0).

One row never fails its neighbours. A row whose instanceID is already stored (a resend, a
conflict, a submission that reuses an edit's instanceID), or that repeats an instanceID earlier
in the same batch, is not written (`INSERT … ON CONFLICT DO NOTHING`, plus a check against
versions); its request gets `None` and takes the receiver's careful one-transaction path, which
decides resend, 409 or split upload exactly as before. If the batch transaction fails as a
whole (a database error, a failed commit), every request of the batch gets `BatchFailed` and is
retried alone on the careful path: it never sees a 201 for rows that were not committed, and if
the commit did succeed after all, the careful path finds its identical row and answers resend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
import structlog

from odk_mcp.events import AuditRecord, emit_many, record_audits, reserve_event_ids
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.pgjson import json_text
from odk_mcp.services.submissions.snapshots import SubmissionSnapshot

log = structlog.get_logger("odk_mcp.submissions.writer")


@dataclass(frozen=True)
class AttachmentRow:
    name: str
    blob_sha256: str | None
    blob_md5: str | None
    blob_size: int | None
    content_type: str | None


@dataclass(frozen=True)
class NewSubmission:
    """Everything one new submission writes (its submission, version, attachment, audit and
    event rows), prepared by the receiver before it reaches the writer."""

    project_id: int
    form_id: int
    xml_form_id: str
    draft: bool
    instance_id: str
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    instance_name: str | None
    form_def_id: int
    form_version: str
    xml: bytes
    xml_sha256: str
    data: Any
    flags: list[dict[str, str]]
    findings: list[dict[str, str]]
    attachments: tuple[AttachmentRow, ...]

    @property
    def key(self) -> tuple[int, bool, str]:
        return (self.form_id, self.draft, self.instance_id)


@dataclass(frozen=True)
class Written:
    submission_id: int
    version_id: int


class WriteProjection(Protocol):
    """Writes derived rows of new submissions in the writer's own transaction, before the
    commit: the aggregation read model registers one, so that a new submission's rows exist when
    it is answered and its `submission.received` event finds them current (they carry that
    event's id, as the event consumer would have written them). It runs inside the batch's
    last pipeline: it may only queue statements on `pg` (no COPY, no reading their results)."""

    async def __call__(
        self,
        pg: psycopg.AsyncConnection[Any],
        snapshots: Sequence[SubmissionSnapshot],
        event_ids: Sequence[int],
    ) -> None:
        """Queue the rows of these new submissions (inserted in this transaction)."""


class BatchFailed(Exception):
    """The batch this submission was in did not commit; retry it on its own."""


# Submissions and their versions in one statement. A row is skipped when its instanceID is
# already a version of that form (a resend, or an edit's instanceID) or a submission (ON
# CONFLICT); a version that still conflicts (a concurrent edit committed meanwhile) leaves a
# submission without a version, which the second step deletes again.
_INSERT = """
WITH input AS (
    SELECT i.*, x.xml
    FROM jsonb_to_recordset(%s::jsonb) AS i(
        n int, project_id int, form_id int, xml_form_id text, draft bool, instance_id text,
        submitter_id int, device_id text, user_agent text, instance_name text, form_def_id int,
        form_version text, xml_sha256 text, data jsonb, flags jsonb, findings jsonb
    )
    JOIN unnest(%b::bytea[]) WITH ORDINALITY AS x(xml, o) ON x.o = i.n + 1
    WHERE NOT EXISTS (
        SELECT 1 FROM submissions.versions v
        WHERE v.form_id = i.form_id AND v.draft = i.draft AND v.instance_id = i.instance_id
    )
),
subs AS (
    INSERT INTO submissions.submissions
        (project_id, form_id, xml_form_id, draft, instance_id, submitter_id, device_id, user_agent,
         created_at)
    SELECT project_id, form_id, xml_form_id, draft, instance_id, submitter_id, device_id, user_agent,
           now()
    FROM input ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING id, form_id, draft, instance_id, created_at
),
vers AS (
    INSERT INTO submissions.versions
        (submission_id, form_id, draft, instance_id, deprecated_id, instance_name, form_def_id,
         form_version, xml, xml_sha256, data, flags, findings, current, submitter_id, device_id,
         user_agent, created_at)
    SELECT s.id, i.form_id, i.draft, i.instance_id, NULL, i.instance_name, i.form_def_id,
           i.form_version, i.xml, i.xml_sha256, i.data, i.flags, i.findings, true, i.submitter_id,
           i.device_id, i.user_agent, now()
    FROM subs s JOIN input i USING (form_id, draft, instance_id)
    ORDER BY i.n
    ON CONFLICT DO NOTHING
    RETURNING id, submission_id
)
SELECT i.n, s.id, v.id, s.created_at
FROM subs s JOIN input i USING (form_id, draft, instance_id) LEFT JOIN vers v ON v.submission_id = s.id
"""

_SET_CURRENT = (
    "UPDATE submissions.submissions s SET current_version_id = u.v"
    " FROM unnest(%t::bigint[], %t::bigint[]) AS u(s, v) WHERE s.id = u.s"
)
_DROP_ORPHANS = "DELETE FROM submissions.submissions WHERE id = ANY(%t::bigint[])"
_ATTACHMENTS = (
    "INSERT INTO submissions.attachments"
    " (version_id, name, blob_sha256, blob_md5, blob_size, content_type, updated_at)"
    " SELECT v, n, s, m, z, c, CASE WHEN s IS NULL THEN NULL ELSE now() END"
    " FROM unnest(%t::bigint[], %t::text[], %t::text[], %t::text[], %t::bigint[], %t::text[])"
    " AS u(v, n, s, m, z, c)"
)

_Pending = tuple[NewSubmission, "asyncio.Future[Written | None]"]


class GroupWriter:
    def __init__(
        self,
        db: Database,
        max_batch: int = 256,
        max_wait_seconds: float = 0.0,
        max_concurrent: int = 1,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._max_wait = max_wait_seconds
        self._max_concurrent = max_concurrent
        self._queue: deque[_Pending] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # Committed batches and rows, the largest batch, failed batches: for tests and metrics.
        self.batches = 0
        self.rows = 0
        self.largest = 0
        self.failed_batches = 0
        self._projections: list[WriteProjection] = []

    def add_projection(self, projection: WriteProjection) -> None:
        """Run `projection` in every batch's transaction, after its rows and before the commit."""
        self._projections.append(projection)

    async def write(self, row: NewSubmission) -> Written | None:
        """Write a new submission with the next batch; None when it must take the careful path.

        Raises `BatchFailed` when its batch did not commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Written | None] = loop.create_future()
        self._queue.append((row, future))
        if self._running < self._max_concurrent:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def close(self) -> None:
        """Let the batches in flight finish (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            # Requests that became ready in the same turn of the event loop join this batch.
            await asyncio.sleep(self._max_wait)
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                await self._flush(batch)
        finally:
            self._running -= 1

    async def _flush(self, batch: list[_Pending]) -> None:
        first: dict[tuple[int, bool, str], _Pending] = {}
        repeats: list[_Pending] = []
        for pending in batch:
            if pending[1].done():
                continue  # its request was cancelled while queued
            if pending[0].key in first:
                repeats.append(pending)
            else:
                first[pending[0].key] = pending
        rows = [p[0] for p in first.values()]
        futures = [p[1] for p in first.values()]
        try:
            results = await self._write(rows) if rows else []
        except BaseException as exc:
            # Every waiting request retries alone (module docstring); a cancelled writer (at
            # shutdown) leaves no request waiting forever either.
            if isinstance(exc, Exception):
                self.failed_batches += 1
                log.warning(
                    "group_commit_failed", rows=len(rows), error_type=type(exc).__name__, exc_info=exc
                )
            for future in futures:
                _settle(future, exc=BatchFailed(f"{type(exc).__name__}: {exc}"))
            for _, future in repeats:
                _settle(future, result=None)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.rows += sum(r is not None for r in results)
        self.largest = max(self.largest, len(rows))
        for future, result in zip(futures, results, strict=True):
            _settle(future, result=result)
        # Same instanceID as an earlier row of this batch: decided now that that row is committed.
        for _, future in repeats:
            _settle(future, result=None)

    async def _write(self, rows: list[NewSubmission]) -> list[Written | None]:
        async with self._db.engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            pg: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            try:
                return await self._write_on(pg, rows)
            except BaseException:
                with contextlib.suppress(Exception):
                    await pg.rollback()
                raise

    async def _write_on(
        self, pg: psycopg.AsyncConnection[Any], rows: list[NewSubmission]
    ) -> list[Written | None]:
        project = bool(self._projections)
        async with pg.pipeline():
            cursor = await pg.execute(_INSERT, _insert_params(rows))
            # The events' ids, taken now: the projections' rows carry them, and still go to the
            # database with the events in one more round trip (the commit's).
            reserved = await reserve_event_ids(pg, len(rows)) if project else None
            inserted = await cursor.fetchall()
        event_ids = sorted(row[0] for row in await reserved.fetchall()) if reserved is not None else None
        written: list[Written | None] = [None] * len(rows)
        created: dict[int, datetime] = {}
        orphans: list[int] = []
        for n, submission_id, version_id, created_at in inserted:
            if version_id is None:
                orphans.append(submission_id)
            else:
                written[n] = Written(submission_id, version_id)
                created[n] = created_at
        done = [(i, w) for i, w in enumerate(written) if w is not None]
        async with pg.pipeline():
            if done:
                await pg.execute(
                    _SET_CURRENT, ([w.submission_id for _, w in done], [w.version_id for _, w in done])
                )
            if orphans:
                await pg.execute(_DROP_ORPHANS, (orphans,))
            attachments = [(w.version_id, a) for i, w in done for a in rows[i].attachments]
            if attachments:
                await pg.execute(
                    _ATTACHMENTS,
                    (
                        [v for v, _ in attachments],
                        [a.name for _, a in attachments],
                        [a.blob_sha256 for _, a in attachments],
                        [a.blob_md5 for _, a in attachments],
                        [a.blob_size for _, a in attachments],
                        [a.content_type for _, a in attachments],
                    ),
                )
            await record_audits(pg, [_audit(rows[i]) for i, _ in done])
            ids = event_ids[: len(done)] if event_ids is not None else None
            await emit_many(pg, [("submission.received", _event(rows[i], w)) for i, w in done], ids)
            if ids is not None and done:
                snapshots = [_snapshot(rows[i], w, created[i]) for i, w in done]
                for projection in self._projections:
                    await projection(pg, snapshots, ids)
            await pg.commit()
        return written


def _settle(
    future: asyncio.Future[Written | None], result: Written | None = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _insert_params(rows: list[NewSubmission]) -> tuple[str, list[bytes]]:
    """The rows as one JSON document (pgjson) and their XML, byte for byte, as one array."""
    document = [
        {
            "n": n,
            "project_id": r.project_id,
            "form_id": r.form_id,
            "xml_form_id": r.xml_form_id,
            "draft": r.draft,
            "instance_id": r.instance_id,
            "submitter_id": r.submitter_id,
            "device_id": r.device_id,
            "user_agent": r.user_agent,
            "instance_name": r.instance_name,
            "form_def_id": r.form_def_id,
            "form_version": r.form_version,
            "xml_sha256": r.xml_sha256,
            "data": r.data,
            "flags": r.flags,
            "findings": r.findings,
        }
        for n, r in enumerate(rows)
    ]
    return json_text(document), [r.xml for r in rows]


def _audit(row: NewSubmission) -> AuditRecord:
    # The same row `record_audit(conn, actor, "submission.create", …)` writes on the careful path.
    return AuditRecord(
        actor_id=row.submitter_id,
        action="submission.create",
        target_type="submission",
        target_id=row.instance_id,
        project_id=row.project_id,
        details={"xmlFormId": row.xml_form_id, "draft": row.draft},
    )


def _snapshot(row: NewSubmission, written: Written, created_at: datetime) -> SubmissionSnapshot:
    """What `read_snapshots` will read for this new submission once it is committed."""
    return SubmissionSnapshot(
        submission_id=written.submission_id,
        project_id=row.project_id,
        form_id=row.form_id,
        xml_form_id=row.xml_form_id,
        draft=row.draft,
        instance_id=row.instance_id,
        version_id=written.version_id,
        current_instance_id=row.instance_id,
        form_def_id=row.form_def_id,
        form_version=row.form_version,
        instance_name=row.instance_name,
        submitter_id=row.submitter_id,
        device_id=row.device_id,
        user_agent=row.user_agent,
        review_state=None,
        created_at=created_at,
        updated_at=None,
        deleted_at=None,
        edits=0,
        attachments_expected=len(row.attachments),
        attachments_present=sum(a.blob_sha256 is not None for a in row.attachments),
        flag_count=len(row.flags),
        finding_count=len(row.findings),
        data=row.data,
    )


def _event(row: NewSubmission, written: Written) -> dict[str, Any]:
    # The same payload as the careful path's `submission.received` (receiving._event).
    return {
        "projectId": row.project_id,
        "xmlFormId": row.xml_form_id,
        "formDefId": row.form_def_id,
        "instanceId": row.instance_id,
        "submissionId": written.submission_id,
        "versionId": written.version_id,
        "draft": row.draft,
    }
