"""Queries of the submissions service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.services.submissions.adapters.tables import attachments, submissions, versions
from odk_mcp.services.submissions.views import SubmissionView


async def version_by_instance(
    conn: AsyncConnection, form_id: int, draft: bool, instance_id: str, *, lock: bool = False
) -> RowMapping | None:
    """A version by its instanceID, with its submission's id, original instanceID and deletion."""
    stmt = (
        select(
            versions.c.id,
            versions.c.submission_id,
            versions.c.xml_sha256,
            versions.c.current,
            submissions.c.instance_id.label("submission_instance_id"),
            submissions.c.deleted_at,
        )
        .join(submissions, submissions.c.id == versions.c.submission_id)
        .where(
            versions.c.form_id == form_id, versions.c.draft == draft, versions.c.instance_id == instance_id
        )
    )
    if lock:
        stmt = stmt.with_for_update(of=versions)
    row: RowMapping | None = (await conn.execute(stmt)).mappings().first()
    return row


def submission_select() -> Select[Any]:
    """Submissions with their current version's details."""
    return select(
        submissions,
        versions.c.instance_id.label("current_instance_id"),
        versions.c.instance_name,
        versions.c.created_at.label("version_created_at"),
        versions.c.form_version,
        versions.c.flags,
    ).join(versions, versions.c.id == submissions.c.current_version_id)


async def submission_view(conn: AsyncConnection, submission_id: int) -> SubmissionView:
    row = (await conn.execute(submission_select().where(submissions.c.id == submission_id))).mappings().one()
    return SubmissionView.from_row(row)


async def attachments_of(conn: AsyncConnection, version_id: int) -> list[RowMapping]:
    stmt = select(attachments).where(attachments.c.version_id == version_id).order_by(attachments.c.name)
    return list((await conn.execute(stmt)).mappings().all())
