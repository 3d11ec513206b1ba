"""Snapshots of stored submissions for read models: each submission's current version with the
metadata a read side needs (edits, attachment counts, flags, findings), read on the caller's
connection so an event consumer sees exactly what the event's transaction committed.

This is the submissions service's read port for other services (aggregation, analytics):
they never query the `submissions` schema themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, exists, func, literal, null, select
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.services.submissions.adapters.tables import attachments, submissions, versions

# Every event the submissions service emits (their payloads carry the ids of what changed).
SUBMISSION_EVENTS: frozenset[str] = frozenset(
    {
        "submission.received",
        "submission.edited",
        "submission.reviewed",
        "submission.deleted",
        "submission.restored",
        "submission.attachments.updated",
    }
)


@dataclass(frozen=True)
class SubmissionSnapshot:
    """A submission as it stands now, with its current version's typed data."""

    submission_id: int
    project_id: int
    form_id: int
    xml_form_id: str
    draft: bool
    instance_id: str
    version_id: int
    current_instance_id: str
    form_def_id: int
    form_version: str
    instance_name: str | None
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    review_state: str | None
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None
    edits: int
    attachments_expected: int
    attachments_present: int
    flag_count: int
    finding_count: int
    data: dict[str, Any]
    # Encrypted submissions (ODK Central's values): `notDecrypted` once the encrypted data file
    # has arrived, `missingEncryptedFormData` before; None for a plain submission.
    status: str | None = None


def _snapshot_select(version_id: int | None = None) -> Any:
    every_version = versions.alias("every_version")
    version_count = (
        select(func.count())
        .select_from(every_version)
        .where(every_version.c.submission_id == submissions.c.id)
        .scalar_subquery()
        .label("version_count")
    )
    expected = (
        select(func.count())
        .select_from(attachments)
        .where(attachments.c.version_id == versions.c.id)
        .scalar_subquery()
        .label("attachments_expected")
    )
    present = (
        select(func.count())
        .select_from(attachments)
        .where(attachments.c.version_id == versions.c.id, attachments.c.blob_sha256.is_not(None))
        .scalar_subquery()
        .label("attachments_present")
    )
    data_file_present = exists(
        select(attachments.c.name).where(
            attachments.c.version_id == versions.c.id,
            attachments.c.name == versions.c.encryption["file"].astext,
            attachments.c.blob_sha256.is_not(None),
        )
    )
    status = case(
        (versions.c.encryption.is_(None), null()),
        (data_file_present, literal("notDecrypted")),
        else_=literal("missingEncryptedFormData"),
    ).label("status")
    return select(
        submissions.c.id.label("submission_id"),
        submissions.c.project_id,
        submissions.c.form_id,
        submissions.c.xml_form_id,
        submissions.c.draft,
        submissions.c.instance_id,
        versions.c.id.label("version_id"),
        versions.c.instance_id.label("current_instance_id"),
        versions.c.form_def_id,
        versions.c.form_version,
        versions.c.instance_name,
        submissions.c.submitter_id,
        submissions.c.device_id,
        submissions.c.user_agent,
        submissions.c.review_state,
        submissions.c.created_at,
        submissions.c.updated_at,
        submissions.c.deleted_at,
        version_count,
        expected,
        present,
        func.jsonb_array_length(versions.c.flags).cast(Integer).label("flag_count"),
        func.jsonb_array_length(versions.c.findings).cast(Integer).label("finding_count"),
        versions.c.data,
        status,
    ).join(
        versions,
        versions.c.id == submissions.c.current_version_id
        if version_id is None
        else and_(versions.c.id == version_id, versions.c.submission_id == submissions.c.id),
    )


def _from_row(row: Any) -> SubmissionSnapshot:
    values = dict(row._mapping)
    values["edits"] = int(values.pop("version_count")) - 1
    return SubmissionSnapshot(**values)


async def read_snapshot(
    conn: AsyncConnection, submission_id: int, version_id: int | None = None
) -> SubmissionSnapshot | None:
    """The submission with that id (deleted or not), or None if it has no current version.

    With `version_id`, the fields of that version (its data, instanceID, form version) in place
    of the current one's, or None if the submission has no such version: what an event about
    that version said, even when the submission was edited since (webhooks freeze it).
    """
    stmt = _snapshot_select(version_id).where(submissions.c.id == submission_id)
    row = (await conn.execute(stmt)).first()
    return _from_row(row) if row is not None else None


async def read_snapshots(conn: AsyncConnection, submission_ids: Sequence[int]) -> list[SubmissionSnapshot]:
    """The submissions with those ids that exist, in id order."""
    if not submission_ids:
        return []
    stmt = _snapshot_select().where(submissions.c.id.in_(list(submission_ids))).order_by(submissions.c.id)
    return [_from_row(row) for row in (await conn.execute(stmt)).all()]


async def submission_ids(
    conn: AsyncConnection, after_id: int, limit: int, form_ids: Sequence[int] | None = None
) -> list[int]:
    """Ids of submissions above `after_id`, in order (keyset batches for rebuilds)."""
    stmt = select(submissions.c.id).where(submissions.c.id > after_id)
    if form_ids is not None:
        stmt = stmt.where(submissions.c.form_id.in_(list(form_ids)))
    return list((await conn.execute(stmt.order_by(submissions.c.id).limit(limit))).scalars())


async def count_submissions(conn: AsyncConnection, form_ids: Sequence[int] | None = None) -> int:
    """How many submissions exist (of those forms), deleted ones included."""
    stmt = select(func.count()).select_from(submissions)
    if form_ids is not None:
        stmt = stmt.where(submissions.c.form_id.in_(list(form_ids)))
    return int((await conn.execute(stmt)).scalar_one())


async def current_xml(conn: AsyncConnection, submission_id: int) -> bytes | None:
    """The current version's XML of a submission, byte for byte (entity blocks live in it)."""
    stmt = select(versions.c.xml).join(submissions, submissions.c.current_version_id == versions.c.id)
    xml = (await conn.execute(stmt.where(submissions.c.id == submission_id))).scalar()
    return bytes(xml) if xml is not None else None
