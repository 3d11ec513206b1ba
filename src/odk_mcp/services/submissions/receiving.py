"""Receiving submissions: new ones, identical resends (adding attachments), edits, conflicts.

The submission, its version, attachment rows, the audit row and the event are committed
together, and only then is the request answered. Media files are written to the blob store
(durably) before that, so a committed row never names a missing file. A new submission (no
deprecatedID) goes to the group writer (writer.py), which commits many of them in one
transaction; anything the writer does not write (its instanceID is already known, or its batch
failed) and every edit takes the careful path here: one transaction per request. Concurrent
posts of one instanceID are serialised by the unique key on (form, draft, instanceID): exactly
one creates the submission, the others see it as a resend (identical XML) or a conflict
(different XML).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import anyio
from lxml import etree
from sqlalchemy import func, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import emit, record_audit
from odk_mcp.infra.blobs import BlobRef, BlobStore
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import utcnow
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms import FormLookup, FormTarget, TargetMiss
from odk_mcp.services.submissions.adapters import store
from odk_mcp.services.submissions.adapters.tables import attachments, submissions, versions
from odk_mcp.services.submissions.domain.envelope import (
    Envelope,
    InvalidSubmission,
    Reading,
    new_instance_id,
    read_data,
    read_encrypted,
    read_envelope,
)
from odk_mcp.services.submissions.domain.validation import evaluate_rules
from odk_mcp.services.submissions.views import Receipt, SubmissionView
from odk_mcp.services.submissions.writer import (
    AttachmentRow,
    BatchFailed,
    GroupWriter,
    NewSubmission,
)

T = TypeVar("T")

# Submissions up to this size are parsed on the event loop (see `_cpu`).
INLINE_XML_BYTES = 64 * 1024


@dataclass(frozen=True)
class IncomingFile:
    name: str
    content: BinaryIO
    content_type: str | None


@dataclass
class ReceiveSubmission:
    project_id: int
    xml: bytes
    files: list[IncomingFile] = field(default_factory=list)
    device_id: str | None = None
    user_agent: str | None = None
    draft: bool = False
    xml_form_id: str | None = None  # when the URL names the form (REST, draft), it must match
    draft_token: str | None = None  # draft testing: this token, not the actor, authorizes
    edit_of: str | None = None  # REST PUT: the instanceId of the submission being edited


@dataclass(frozen=True)
class Parsed:
    envelope: Envelope
    target: FormTarget
    reading: Reading
    instance_id: str
    sha256: str
    findings: list[dict[str, str]]
    encryption: dict[str, str] | None = None


class Receiver:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        lookup: FormLookup,
        blobs: BlobStore,
        max_xml_bytes: int,
        writer: GroupWriter | None = None,
    ) -> None:
        self._db = db
        self._authz = authorizer
        self._lookup = lookup
        self._blobs = blobs
        self._max_xml = max_xml_bytes
        self._writer = writer

    async def receive(self, actor: Actor, command: ReceiveSubmission, *, view: bool = True) -> Receipt:
        """Store the submission; with `view=False` (OpenRosa, whose answer does not show it)
        the receipt carries no submission view, which saves a query."""
        parsed = await self._parse(actor, command)
        stored = await self._store_media(parsed, command.files)
        # The group writer takes plain new submissions; edits and encrypted envelopes (rare, and
        # carrying their decryption parts) go through one transaction of their own.
        batched = parsed.envelope.deprecated_id is None and command.edit_of is None and not parsed.encryption
        if self._writer is not None and batched:
            try:
                written = await self._writer.write(_new_row(actor, command, parsed, stored))
            except BatchFailed:
                written = None  # retried alone below: a 201 only for what is committed
            if written is not None:
                submission = None
                if view:
                    async with self._db.read() as conn:
                        submission = await store.submission_view(conn, written.submission_id)
                return Receipt(submission, "created", len(stored))
        for attempt in range(3):
            try:
                async with self._db.transaction() as conn:
                    if parsed.envelope.deprecated_id is not None:
                        return await self._edit(conn, actor, command, parsed, stored, view)
                    return await self._create_or_resend(conn, actor, command, parsed, stored, view)
            except IntegrityError:
                # A concurrent edit and new submission raced for one instanceID; the retry
                # sees the winner's committed rows and answers resend or conflict.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- checks before anything is stored -------------------------------------------------
    async def _parse(self, actor: Actor, command: ReceiveSubmission) -> Parsed:
        try:
            envelope = await _cpu(len(command.xml), read_envelope, command.xml, self._max_xml)
        except InvalidSubmission as exc:
            raise not_valid(exc) from exc
        if command.xml_form_id is not None and envelope.xml_form_id != command.xml_form_id:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                f"The submission is for form {envelope.xml_form_id}, not {command.xml_form_id}.",
                {"field": "form id", "value": envelope.xml_form_id},
            )
        if command.edit_of is not None and envelope.deprecated_id is None:
            raise Problem(problems.EXPECTED_DEPRECATION)
        if command.draft_token is not None:
            ok = await self._lookup.draft_token_matches(
                command.project_id, envelope.xml_form_id, command.draft_token
            )
            if not ok:
                raise Problem(problems.DRAFT_ACCESS_FAILED)
        else:
            self._authz.require(actor, "submission.create", command.project_id, envelope.xml_form_id)
        target = await self._lookup.for_submission(
            command.project_id, envelope.xml_form_id, envelope.version, command.draft
        )
        if isinstance(target, TargetMiss):
            if target.form_exists:
                raise Problem(
                    problems.FORM_VERSION_NOT_FOUND,
                    f"The form version specified in this submission '{envelope.version}' does not exist.",
                    {"formVersion": envelope.version},
                )
            raise Problem(problems.NOT_FOUND, f"There is no form {envelope.xml_form_id} in this project.")
        if target.state == "closed" and not command.draft:
            raise Problem(problems.NOT_ACCEPTING_SUBMISSIONS)
        encryption = None
        if envelope.encrypted:
            try:
                reading, encryption = read_encrypted(envelope.root)
            except InvalidSubmission as exc:
                raise not_valid(exc) from exc
            findings: list[dict[str, str]] = []  # nothing to check until it is decrypted
        else:
            reading, findings = await _cpu(len(command.xml), _read, envelope, target)
        instance_id = envelope.instance_id or new_instance_id()
        if envelope.instance_id is None:
            reading.flags.append(
                {"path": "/meta/instanceID", "rule": "generated", "detail": "assigned by server"}
            )
        sha256 = hashlib.sha256(command.xml).hexdigest()
        return Parsed(envelope, target, reading, instance_id, sha256, findings, encryption)

    async def _store_media(
        self, parsed: Parsed, files: list[IncomingFile]
    ) -> dict[str, tuple[BlobRef, str | None]]:
        """Write the files the submission names to the blob store; others are not kept."""
        wanted = set(parsed.reading.media)
        stored: dict[str, tuple[BlobRef, str | None]] = {}
        for incoming in files:
            if incoming.name in wanted and incoming.name not in stored:
                ref = await anyio.to_thread.run_sync(self._blobs.put_stream, incoming.content)
                stored[incoming.name] = (ref, incoming.content_type)
        ignored = sorted({f.name for f in files} - wanted)
        if ignored:
            parsed.reading.flags.append(
                {
                    "path": "",
                    "rule": "attachment",
                    "detail": "files not named by the submission: " + ", ".join(ignored)[:500],
                }
            )
        return stored

    # -- new or resent ----------------------------------------------------------------------
    async def _create_or_resend(
        self,
        conn: AsyncConnection,
        actor: Actor,
        command: ReceiveSubmission,
        parsed: Parsed,
        stored: dict[str, tuple[BlobRef, str | None]],
        view: bool,
    ) -> Receipt:
        target = parsed.target
        existing = await store.version_by_instance(
            conn, target.form_id, command.draft, parsed.instance_id, lock=True
        )
        if existing is None:
            created = (
                await conn.execute(
                    pg_insert(submissions)
                    .values(
                        project_id=target.project_id,
                        form_id=target.form_id,
                        xml_form_id=target.xml_form_id,
                        draft=command.draft,
                        instance_id=parsed.instance_id,
                        submitter_id=_actor_id(actor),
                        device_id=command.device_id,
                        user_agent=command.user_agent,
                        created_at=func.now(),
                    )
                    .on_conflict_do_nothing()
                    .returning(submissions.c.id)
                )
            ).scalar_one_or_none()
            if created is not None:
                version_id = await self._insert_version(
                    conn, actor, command, parsed, created, stored, carried={}
                )
                await conn.execute(
                    update(submissions)
                    .where(submissions.c.id == created)
                    .values(current_version_id=version_id)
                )
                await record_audit(
                    conn,
                    actor,
                    "submission.create",
                    "submission",
                    parsed.instance_id,
                    project_id=target.project_id,
                    details={"xmlFormId": target.xml_form_id, "draft": command.draft},
                )
                await emit(
                    conn,
                    "submission.received",
                    _event(target, parsed.instance_id, created, version_id, command),
                )
                return Receipt(await _view(conn, created, view), "created", len(stored))
            # Another request created it meanwhile (its transaction has committed): a resend.
            existing = await store.version_by_instance(
                conn, target.form_id, command.draft, parsed.instance_id, lock=True
            )
            assert existing is not None
        return await self._resend(conn, actor, parsed, existing, stored, view)

    async def _resend(
        self,
        conn: AsyncConnection,
        actor: Actor,
        parsed: Parsed,
        existing: RowMapping,
        stored: dict[str, tuple[BlobRef, str | None]],
        view: bool,
    ) -> Receipt:
        if existing["deleted_at"] is not None:
            raise Problem(problems.SUBMISSION_DELETED)
        if existing["xml_sha256"] != parsed.sha256:
            raise Problem(problems.XML_CONFLICT)
        added = 0
        for name, (ref, content_type) in stored.items():
            result = await conn.execute(
                update(attachments)
                .where(
                    attachments.c.version_id == existing["id"],
                    attachments.c.name == name,
                    attachments.c.blob_sha256.is_distinct_from(ref.sha256),
                )
                .values(**_blob_values(ref, content_type))
            )
            added += result.rowcount
        if added:
            await record_audit(
                conn,
                actor,
                "submission.attachment.update",
                "submission",
                parsed.instance_id,
                project_id=parsed.target.project_id,
                details={"added": added},
            )
            await emit(
                conn,
                "submission.attachments.updated",
                {
                    "projectId": parsed.target.project_id,
                    "xmlFormId": parsed.target.xml_form_id,
                    "instanceId": parsed.instance_id,
                    "submissionId": existing["submission_id"],
                },
            )
        return Receipt(await _view(conn, existing["submission_id"], view), "resent", added)

    # -- edits ----------------------------------------------------------------------------
    async def _edit(
        self,
        conn: AsyncConnection,
        actor: Actor,
        command: ReceiveSubmission,
        parsed: Parsed,
        stored: dict[str, tuple[BlobRef, str | None]],
        view: bool,
    ) -> Receipt:
        target = parsed.target
        deprecated_id = parsed.envelope.deprecated_id
        assert deprecated_id is not None
        old = await store.version_by_instance(conn, target.form_id, command.draft, deprecated_id, lock=True)
        if old is None or (command.edit_of is not None and old["submission_instance_id"] != command.edit_of):
            raise Problem(problems.DEPRECATED_ID_NOT_FOUND, details={"deprecatedId": deprecated_id})
        if old["deleted_at"] is not None:
            raise Problem(problems.SUBMISSION_DELETED)
        same = await store.version_by_instance(
            conn, target.form_id, command.draft, parsed.instance_id, lock=True
        )
        if same is not None:
            if same["submission_id"] == old["submission_id"] and same["xml_sha256"] == parsed.sha256:
                return await self._resend(conn, actor, parsed, same, stored, view)  # the edit, sent again
            raise Problem(problems.INSTANCE_ID_CONFLICT)
        if not old["current"]:
            raise Problem(problems.DEPRECATING_OLD_SUBMISSION, details={"deprecatedId": deprecated_id})
        self._authz_edit(actor, command, target)
        carried = {
            row["name"]: row for row in await store.attachments_of(conn, old["id"]) if row["blob_sha256"]
        }
        await conn.execute(update(versions).where(versions.c.id == old["id"]).values(current=False))
        submission_id = old["submission_id"]
        version_id = await self._insert_version(conn, actor, command, parsed, submission_id, stored, carried)
        await conn.execute(
            update(submissions)
            .where(submissions.c.id == submission_id)
            .values(current_version_id=version_id, review_state="edited", updated_at=func.now())
        )
        await record_audit(
            conn,
            actor,
            "submission.update.version",
            "submission",
            old["submission_instance_id"],
            project_id=target.project_id,
            details={"instanceId": parsed.instance_id, "deprecatedId": deprecated_id},
        )
        await emit(
            conn, "submission.edited", _event(target, parsed.instance_id, submission_id, version_id, command)
        )
        return Receipt(await _view(conn, submission_id, view), "edited", len(stored))

    def _authz_edit(self, actor: Actor, command: ReceiveSubmission, target: FormTarget) -> None:
        # Collect sends edits as submissions (submission.create); the REST PUT needs update rights.
        if command.edit_of is not None and command.draft_token is None:
            self._authz.require(actor, "submission.update", target.project_id, target.xml_form_id)

    async def _insert_version(
        self,
        conn: AsyncConnection,
        actor: Actor,
        command: ReceiveSubmission,
        parsed: Parsed,
        submission_id: int,
        stored: dict[str, tuple[BlobRef, str | None]],
        carried: dict[str, RowMapping],
    ) -> int:
        version_id: int = (
            await conn.execute(
                insert(versions)
                .values(
                    submission_id=submission_id,
                    form_id=parsed.target.form_id,
                    draft=command.draft,
                    instance_id=parsed.instance_id,
                    deprecated_id=parsed.envelope.deprecated_id,
                    instance_name=parsed.envelope.instance_name,
                    form_def_id=parsed.target.def_id,
                    form_version=parsed.target.version,
                    xml=command.xml,
                    xml_sha256=parsed.sha256,
                    data=parsed.reading.data,
                    flags=parsed.reading.flags,
                    findings=parsed.findings,
                    encryption=parsed.encryption,
                    current=True,
                    submitter_id=_actor_id(actor),
                    device_id=command.device_id,
                    user_agent=command.user_agent,
                    created_at=func.now(),
                )
                .returning(versions.c.id)
            )
        ).scalar_one()
        rows = []
        for name in dict.fromkeys(parsed.reading.media):
            values: dict[str, Any] = {"version_id": version_id, "name": name, **EMPTY_BLOB}
            if name in stored:
                values.update(_blob_values(*stored[name]))
            elif name in carried:
                previous = carried[name]
                values.update(
                    blob_sha256=previous["blob_sha256"],
                    blob_md5=previous["blob_md5"],
                    blob_size=previous["blob_size"],
                    content_type=previous["content_type"],
                    updated_at=previous["updated_at"],
                )
            rows.append(values)
        if rows:
            await conn.execute(insert(attachments), rows)
        return version_id


# Every row of one multi-row INSERT needs the same keys.
EMPTY_BLOB: dict[str, Any] = dict.fromkeys(
    ("blob_sha256", "blob_md5", "blob_size", "content_type", "updated_at")
)


def not_valid(error: InvalidSubmission) -> Problem:
    return Problem(problems.SUBMISSION_NOT_VALID, f"The submission XML is not valid: {error}")


async def _cpu(size: int, function: Callable[..., T], *args: Any) -> T:
    """Run a submission's parsing work: inline for a typical submission (a few ms of CPU at most,
    less than the cost of a thread hop and of the GIL changing hands), in a worker thread for a
    large one, so that it cannot hold the event loop for long."""
    if size <= INLINE_XML_BYTES:
        return function(*args)
    return await anyio.to_thread.run_sync(function, *args)


def _read(envelope: Envelope, target: FormTarget) -> tuple[Reading, list[dict[str, str]]]:
    """Typed data and rule findings (CPU work, run off the event loop)."""
    reading = read_data(envelope.root, target.schema)
    now = utcnow()
    root_name = etree.QName(envelope.root).localname
    return reading, evaluate_rules(root_name, reading.data, target.schema, now.date(), now)


async def _view(conn: AsyncConnection, submission_id: int, view: bool) -> SubmissionView | None:
    return await store.submission_view(conn, submission_id) if view else None


def _new_row(
    actor: Actor,
    command: ReceiveSubmission,
    parsed: Parsed,
    stored: dict[str, tuple[BlobRef, str | None]],
) -> NewSubmission:
    """The rows of a new submission for the group writer: the same values `_create_or_resend`
    and `_insert_version` write."""
    attachments = []
    for name in dict.fromkeys(parsed.reading.media):
        if name in stored:
            ref, content_type = stored[name]
            attachments.append(
                AttachmentRow(name, ref.sha256, ref.md5, ref.size, content_type or "application/octet-stream")
            )
        else:
            attachments.append(AttachmentRow(name, None, None, None, None))
    target = parsed.target
    return NewSubmission(
        project_id=target.project_id,
        form_id=target.form_id,
        xml_form_id=target.xml_form_id,
        draft=command.draft,
        instance_id=parsed.instance_id,
        submitter_id=_actor_id(actor),
        device_id=command.device_id,
        user_agent=command.user_agent,
        instance_name=parsed.envelope.instance_name,
        form_def_id=target.def_id,
        form_version=target.version,
        xml=command.xml,
        xml_sha256=parsed.sha256,
        data=parsed.reading.data,
        flags=parsed.reading.flags,
        findings=parsed.findings,
        attachments=tuple(attachments),
    )


def _actor_id(actor: Actor) -> int | None:
    return actor.id if actor.id > 0 else None


def _blob_values(ref: BlobRef, content_type: str | None) -> dict[str, Any]:
    return {
        "blob_sha256": ref.sha256,
        "blob_md5": ref.md5,
        "blob_size": ref.size,
        "content_type": content_type or "application/octet-stream",
        "updated_at": utcnow(),  # a value, not now(): these dicts also feed multi-row INSERTs
    }


def _event(
    target: FormTarget, instance_id: str, submission_id: int, version_id: int, command: ReceiveSubmission
) -> dict[str, Any]:
    return {
        "projectId": target.project_id,
        "xmlFormId": target.xml_form_id,
        "formDefId": target.def_id,
        "instanceId": instance_id,
        "submissionId": submission_id,
        "versionId": version_id,
        "draft": command.draft,
    }
