"""Bulk import: many submission XML documents of one form, written in set-based batches.

For migrating data in (an ODK Central or Kobo server's submission XML, an archive of
instances) and for loading benchmarks: a million submissions through the OpenRosa endpoint or
the receiver would cost a transaction, an event and a read-model projection each. Here every
document is read with exactly the code normal ingestion uses (`read_envelope`, `read_data`,
`evaluate_rules`: the same typed data, flags, findings and attachment rows), then a batch is
written in one transaction with a few statements: submissions through `unnest … ON CONFLICT DO
NOTHING`, versions through `COPY`, attachment and audit rows through `unnest`, then whatever
the registered import projections write (the aggregation read model registers one, so
imported submissions are readable at once), and ONE batch event `submission.imported`.

Downstream consumers do not receive a per-submission `submission.received` for imported
rows (docs/submissions.md, "Bulk import"): a million receipt events would keep the event worker
busy for an hour re-deriving what the import already wrote. The read model is written in the
same transaction instead (a projection registered here), and the batch event names the ids of
what was imported for any consumer that wants to react (none of the built-in per-submission
consumers subscribe to it: imported data is history, so no webhooks fire and no entities are
created from it).

Each batch is all or nothing: a document that is not a valid submission of the form fails its
batch before anything is written, with the document's position in the error. Importing is
idempotent on instanceID: a document whose instanceID the form already has is skipped (the
same bytes) or reported as a conflict (different bytes), never written twice, so an import
interrupted or stopped by a bad document can simply be run again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from typing import Any, Protocol

import anyio
import psycopg

from odk_mcp.events import AuditRecord, emit_many, record_audits
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.pgjson import json_text
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms import FormLookup, FormTarget, TargetMiss
from odk_mcp.services.submissions.bulk_reading import ChunkReading, ReadDocument, first_version, read_chunk
from odk_mcp.services.submissions.snapshots import SubmissionSnapshot

IMPORTED_EVENT = "submission.imported"


@dataclass(frozen=True)
class ImportDocument:
    """One submission to import: its XML and, when the source kept them, its metadata."""

    xml: bytes
    created_at: datetime | None = None  # default: the import's transaction time
    device_id: str | None = None
    user_agent: str | None = None


@dataclass
class ImportResult:
    """What an import did: written, skipped (already stored, same bytes), and conflicts
    (already stored with other bytes: not written), by instanceID."""

    imported: int = 0
    skipped: int = 0
    conflicts: list[str] = field(default_factory=list)

    def add(self, other: ImportResult) -> None:
        self.imported += other.imported
        self.skipped += other.skipped
        self.conflicts.extend(other.conflicts)


class ImportProjection(Protocol):
    """Writes derived rows for imported submissions in the import's own transaction (on its
    driver connection), so that no per-submission event is needed to bring them up to date."""

    async def __call__(
        self, pg: psycopg.AsyncConnection[Any], snapshots: Sequence[SubmissionSnapshot]
    ) -> None:
        """Write the rows of these new submissions (just inserted, in this transaction)."""


@dataclass(frozen=True)
class _Prepared:
    document: ImportDocument
    read: ReadDocument
    target: FormTarget

    @property
    def instance_id(self) -> str:
        return self.read.instance_id


ImportProgress = Callable[[ImportResult], Awaitable[None] | None]


class _Reader:
    """Reads the chunks of one import (in a process pool or a thread) against the form
    versions resolved so far, resolving a new version when a chunk names one."""

    def __init__(self, importer: Importer, project_id: int, xml_form_id: str, pool: Executor | None) -> None:
        self._importer = importer
        self._project_id = project_id
        self._xml_form_id = xml_form_id
        self._pool = pool
        self._targets: dict[str, FormTarget] = {}

    async def resolve_first(self, document: ImportDocument) -> None:
        version = await anyio.to_thread.run_sync(first_version, document.xml, self._importer.max_xml_bytes)
        if version is not None and version not in self._targets:
            with contextlib.suppress(Problem):  # reported with the document's index when read
                self._targets[version] = await self._importer.target(
                    self._project_id, self._xml_form_id, version
                )

    async def read(self, documents: list[ImportDocument], start: int) -> ChunkReading:
        args = (
            [d.xml for d in documents],
            start,
            self._xml_form_id,
            self._importer.max_xml_bytes,
            dict(self._targets),
        )
        if self._pool is None:
            return await anyio.to_thread.run_sync(read_chunk, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, read_chunk, *args)

    async def prepare(
        self, documents: list[ImportDocument], start: int, reading: ChunkReading
    ) -> list[_Prepared]:
        while reading.failure is None and reading.missing:
            for version in sorted(reading.missing - set(self._targets)):
                self._targets[version] = await self._importer.target(
                    self._project_id, self._xml_form_id, version
                )
            reading = await self.read(documents, start)
        if reading.failure is not None:
            failure = reading.failure
            raise Problem(problems.CATALOGUE[failure.problem], failure.message, failure.details)
        return [_Prepared(documents[r.index - start], r, self._targets[r.version]) for r in reading.documents]


class Importer:
    def __init__(self, db: Database, authorizer: Authorizer, lookup: FormLookup, max_xml_bytes: int) -> None:
        self._db = db
        self._authz = authorizer
        self._lookup = lookup
        self.max_xml_bytes = max_xml_bytes
        self._projections: list[ImportProjection] = []

    def add_projection(self, projection: ImportProjection) -> None:
        """Register a read side that imports write in the same transaction (bootstrap)."""
        self._projections.append(projection)

    async def import_batch(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        documents: Sequence[ImportDocument],
        start: int = 0,
    ) -> ImportResult:
        """Import these documents in one transaction (all or nothing); `start` numbers them in
        errors when they are one batch of a longer import."""
        self._authorize(actor, project_id, xml_form_id)
        reader = _Reader(self, project_id, xml_form_id, None)
        prepared = await reader.prepare(list(documents), start, await reader.read(list(documents), start))
        return await self._write(actor, prepared)

    async def import_many(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        documents: Iterable[ImportDocument],
        batch_size: int = 1000,
        workers: int = 0,
        progress: ImportProgress | None = None,
    ) -> ImportResult:
        """Import any number of documents, batch by batch, each batch committed on its own.

        Batches are read ahead (in `workers` processes, or a thread when 0) while the previous
        one is written, so reading and the database work overlap. Stops at the first invalid
        document, after committing the batches before its own (running the import again skips
        those)."""
        self._authorize(actor, project_id, xml_form_id)
        total = ImportResult()
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 0 else None
        reader = _Reader(self, project_id, xml_form_id, pool)
        ahead: deque[tuple[list[ImportDocument], int, asyncio.Future[ChunkReading]]] = deque()
        writing: asyncio.Future[ImportResult] | None = None
        chunks = _chunks(documents, batch_size)
        start = 0
        try:
            while True:
                while len(ahead) < max(workers, 1) + 1:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    if start == 0:
                        await reader.resolve_first(chunk[0])
                    ahead.append((chunk, start, asyncio.ensure_future(reader.read(chunk, start))))
                    start += len(chunk)
                if not ahead:
                    break
                chunk, first, reading = ahead.popleft()
                prepared = await reader.prepare(chunk, first, await reading)
                if writing is not None:
                    await _tally(total, await writing, progress)
                writing = asyncio.ensure_future(self._write(actor, prepared))
            if writing is not None:
                await _tally(total, await writing, progress)
                writing = None
        finally:
            # On a failure, the batch being written still commits; reads ahead are dropped.
            if writing is not None:
                await asyncio.gather(writing, return_exceptions=True)
            for _, _, reading in ahead:
                reading.cancel()
            await asyncio.gather(*(r for _, _, r in ahead), return_exceptions=True)
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        return total

    def _authorize(self, actor: Actor, project_id: int, xml_form_id: str) -> None:
        # Importing creates submissions on others' behalf: creation and update rights (managers).
        self._authz.require(actor, "submission.create", project_id, xml_form_id)
        self._authz.require(actor, "submission.update", project_id, xml_form_id)

    async def target(self, project_id: int, xml_form_id: str, version: str) -> FormTarget:
        target = await self._lookup.for_submission(project_id, xml_form_id, version, False)
        if isinstance(target, TargetMiss):
            if target.form_exists:
                raise Problem(
                    problems.FORM_VERSION_NOT_FOUND,
                    f"The form version specified in an imported document '{version}' does not exist.",
                    {"formVersion": version},
                )
            raise Problem(problems.NOT_FOUND, f"There is no form {xml_form_id} in this project.")
        return target

    # -- writing --------------------------------------------------------------------------
    async def _write(self, actor: Actor, prepared: list[_Prepared]) -> ImportResult:
        async with self._db.engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            pg: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            try:
                result = await self._write_on(pg, actor, prepared)
                await pg.commit()
                return result
            except BaseException:
                await pg.rollback()
                raise

    async def _write_on(
        self, pg: psycopg.AsyncConnection[Any], actor: Actor, prepared: list[_Prepared]
    ) -> ImportResult:
        result = ImportResult()
        if not prepared:
            return result
        form_id = prepared[0].target.form_id
        unique: dict[str, _Prepared] = {}
        for item in prepared:
            first = unique.setdefault(item.instance_id, item)
            if first is not item:
                _classify(result, item.instance_id, first.read.sha256 == item.read.sha256)
        stored = await (
            await pg.execute(
                "SELECT instance_id, xml_sha256 FROM submissions.versions"
                " WHERE form_id = %s AND NOT draft AND instance_id = ANY(%s::text[])",
                (form_id, list(unique)),
            )
        ).fetchall()
        for instance_id, sha256 in stored:
            _classify(result, instance_id, unique.pop(instance_id).read.sha256 == sha256)
        if not unique:
            return result
        items = list(unique.values())
        now = (await (await pg.execute("SELECT now()")).fetchone())[0]  # type: ignore[index]
        submitter = actor.id if actor.id > 0 else None
        inserted = await (
            await pg.execute(
                "INSERT INTO submissions.submissions (project_id, form_id, xml_form_id, draft, instance_id,"
                " submitter_id, device_id, user_agent, created_at)"
                " SELECT %s, %s, %s, false, i, %s, d, u, c"
                " FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])"
                " WITH ORDINALITY AS x(i, d, u, c, n)"
                " ORDER BY n ON CONFLICT DO NOTHING RETURNING id, instance_id",
                (
                    items[0].target.project_id,
                    form_id,
                    items[0].target.xml_form_id,
                    submitter,
                    [p.instance_id for p in items],
                    [p.document.device_id for p in items],
                    [p.document.user_agent for p in items],
                    [p.document.created_at or now for p in items],
                ),
            )
        ).fetchall()
        ids = {instance_id: submission_id for submission_id, instance_id in inserted}
        # Stored meanwhile by a concurrent request (committed before our insert): not ours.
        result.skipped += len(items) - len(ids)
        items = [p for p in items if p.instance_id in ids]
        if not items:
            return result
        version_ids = [
            row[0]
            for row in await (
                await pg.execute(
                    "SELECT nextval('submissions.versions_id_seq') FROM generate_series(1, %s)", (len(items),)
                )
            ).fetchall()
        ]
        await _copy_versions(pg, items, ids, version_ids, submitter, now)
        await pg.execute(
            "UPDATE submissions.submissions s SET current_version_id = u.v"
            " FROM unnest(%s::bigint[], %s::bigint[]) AS u(s, v) WHERE s.id = u.s",
            ([ids[p.instance_id] for p in items], version_ids),
        )
        await _insert_attachments(pg, items, version_ids)
        await record_audits(pg, [_audit(p, submitter) for p in items])
        snapshots = [
            _snapshot(p, ids[p.instance_id], version_id, submitter, now)
            for p, version_id in zip(items, version_ids, strict=True)
        ]
        for projection in self._projections:
            await projection(pg, snapshots)
        submission_ids = [s.submission_id for s in snapshots]
        await emit_many(
            pg,
            [
                (
                    IMPORTED_EVENT,
                    {
                        "projectId": items[0].target.project_id,
                        "xmlFormId": items[0].target.xml_form_id,
                        "formId": form_id,
                        "draft": False,
                        "count": len(submission_ids),
                        "submissionIds": submission_ids,
                    },
                )
            ],
        )
        result.imported = len(items)
        return result


def _classify(result: ImportResult, instance_id: str, same: bool) -> None:
    if same:
        result.skipped += 1
    else:
        result.conflicts.append(instance_id)


async def _copy_versions(
    pg: psycopg.AsyncConnection[Any],
    items: list[_Prepared],
    ids: dict[str, int],
    version_ids: list[int],
    submitter: int | None,
    now: datetime,
) -> None:
    columns = (
        "id, submission_id, form_id, draft, instance_id, deprecated_id, instance_name, form_def_id,"
        " form_version, xml, xml_sha256, data, flags, findings, current, submitter_id, device_id,"
        " user_agent, created_at"
    )
    async with pg.cursor().copy(f"COPY submissions.versions ({columns}) FROM STDIN") as copy:
        for p, version_id in zip(items, version_ids, strict=True):
            await copy.write_row(
                (
                    version_id,
                    ids[p.instance_id],
                    p.target.form_id,
                    False,
                    p.instance_id,
                    None,
                    p.read.instance_name,
                    p.target.def_id,
                    p.target.version,
                    p.document.xml,
                    p.read.sha256,
                    json_text(p.read.data),
                    json_text(p.read.flags),
                    json_text(p.read.findings),
                    True,
                    submitter,
                    p.document.device_id,
                    p.document.user_agent,
                    p.document.created_at or now,
                )
            )


async def _insert_attachments(
    pg: psycopg.AsyncConnection[Any], items: list[_Prepared], version_ids: list[int]
) -> None:
    """Expected attachment rows (no file yet), as a submission sent without its media gets:
    the files can be uploaded afterwards (`POST …/submissions/{id}/attachments/{name}`)."""
    pairs = [(v, name) for p, v in zip(items, version_ids, strict=True) for name in p.read.media]
    if pairs:
        await pg.execute(
            "INSERT INTO submissions.attachments (version_id, name)"
            " SELECT * FROM unnest(%s::bigint[], %s::text[])",
            ([v for v, _ in pairs], [n for _, n in pairs]),
        )


def _audit(p: _Prepared, submitter: int | None) -> AuditRecord:
    return AuditRecord(
        actor_id=submitter,
        action="submission.create",
        target_type="submission",
        target_id=p.instance_id,
        project_id=p.target.project_id,
        details={"xmlFormId": p.target.xml_form_id, "draft": False, "imported": True},
    )


def _snapshot(
    p: _Prepared, submission_id: int, version_id: int, submitter: int | None, now: datetime
) -> SubmissionSnapshot:
    """The snapshot `read_snapshot` would give for this submission once committed."""
    return SubmissionSnapshot(
        submission_id=submission_id,
        project_id=p.target.project_id,
        form_id=p.target.form_id,
        xml_form_id=p.target.xml_form_id,
        draft=False,
        instance_id=p.instance_id,
        version_id=version_id,
        current_instance_id=p.instance_id,
        form_def_id=p.target.def_id,
        form_version=p.target.version,
        instance_name=p.read.instance_name,
        submitter_id=submitter,
        device_id=p.document.device_id,
        user_agent=p.document.user_agent,
        review_state=None,
        created_at=p.document.created_at or now,
        updated_at=None,
        deleted_at=None,
        edits=0,
        attachments_expected=len(p.read.media),
        attachments_present=0,
        flag_count=len(p.read.flags),
        finding_count=len(p.read.findings),
        data=p.read.data,
    )


def _chunks(documents: Iterable[ImportDocument], size: int) -> Iterator[list[ImportDocument]]:
    chunk: list[ImportDocument] = []
    for document in documents:
        chunk.append(document)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _tally(total: ImportResult, batch: ImportResult, progress: ImportProgress | None) -> None:
    total.add(batch)
    if progress is not None:
        outcome = progress(total)
        if outcome is not None:
            await outcome
