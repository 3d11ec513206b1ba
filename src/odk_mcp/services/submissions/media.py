"""The media files of submissions' current versions, for exports (the `media/` folder of a
`.csv.zip`): a read port for other services, on the caller's connection, so they never
query the `submissions` schema themselves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.services.submissions.adapters.tables import attachments, submissions


@dataclass(frozen=True)
class AttachmentBlob:
    submission_id: int
    name: str
    sha256: str
    size: int


async def current_attachments(conn: AsyncConnection, submission_ids: Sequence[int]) -> list[AttachmentBlob]:
    """The attachments present on those submissions' current versions (missing ones are
    left out), by submission then name."""
    if not submission_ids:
        return []
    stmt = (
        select(submissions.c.id, attachments.c.name, attachments.c.blob_sha256, attachments.c.blob_size)
        .join(attachments, attachments.c.version_id == submissions.c.current_version_id)
        .where(submissions.c.id.in_(list(submission_ids)), attachments.c.blob_sha256.is_not(None))
        .order_by(submissions.c.id, attachments.c.name)
    )
    rows = (await conn.execute(stmt)).all()
    return [AttachmentBlob(r.id, r.name, r.blob_sha256, int(r.blob_size or 0)) for r in rows]
