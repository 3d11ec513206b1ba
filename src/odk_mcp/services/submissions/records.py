"""Reading and managing stored submissions: listing, versions, XML, attachments, review,
comments, deletion and restore."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import func, insert, select, true, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import emit, record_audit
from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms import FormLookup
from odk_mcp.services.submissions.adapters import store
from odk_mcp.services.submissions.adapters.tables import attachments, comments, submissions, versions
from odk_mcp.services.submissions.views import SubmissionView, VersionView

REVIEW_STATES = ("hasIssues", "edited", "approved", "rejected")
MAX_COMMENT_LENGTH = 10_000


@dataclass(frozen=True)
class ListFilter:
    submitter_id: int | None = None
    review_state: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    deleted: bool = False
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class AttachmentFile:
    name: str
    sha256: str
    md5: str
    content_type: str
    size: int | None


class Records:
    def __init__(self, db: Database, authorizer: Authorizer, lookup: FormLookup, blobs: BlobStore) -> None:
        self._db = db
        self._authz = authorizer
        self._lookup = lookup
        self._blobs = blobs

    async def _form(self, actor: Actor, verb: str, project_id: int, xml_form_id: str) -> int:
        self._authz.require(actor, verb, project_id, xml_form_id)
        form_id = await self._lookup.live_form_id(project_id, xml_form_id)
        if form_id is None:
            raise Problem(problems.NOT_FOUND)
        return form_id

    async def _submission(
        self,
        conn: AsyncConnection,
        form_id: int,
        draft: bool,
        instance_id: str,
        *,
        deleted: bool = False,
        lock: bool = False,
    ) -> RowMapping:
        stmt = select(submissions).where(
            submissions.c.form_id == form_id,
            submissions.c.draft == draft,
            submissions.c.instance_id == instance_id,
        )
        stmt = stmt.where(
            submissions.c.deleted_at.is_not(None) if deleted else submissions.c.deleted_at.is_(None)
        )
        if lock:
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise Problem(problems.NOT_FOUND)
        return row

    async def list_submissions(
        self, actor: Actor, project_id: int, xml_form_id: str, draft: bool, filters: ListFilter
    ) -> tuple[list[SubmissionView], int]:
        """A page of submissions, newest first, and the total matching the filters."""
        form_id = await self._form(actor, "submission.list", project_id, xml_form_id)
        if filters.review_state is not None and filters.review_state not in (*REVIEW_STATES, "null"):
            raise Problem(problems.UNEXPECTED_VALUE, "Unknown reviewState.", {"field": "reviewState"})
        conditions = [submissions.c.form_id == form_id, submissions.c.draft == draft]
        conditions.append(
            submissions.c.deleted_at.is_not(None) if filters.deleted else submissions.c.deleted_at.is_(None)
        )
        if filters.submitter_id is not None:
            conditions.append(submissions.c.submitter_id == filters.submitter_id)
        if filters.review_state == "null":
            conditions.append(submissions.c.review_state.is_(None))
        elif filters.review_state is not None:
            conditions.append(submissions.c.review_state == filters.review_state)
        if filters.start is not None:
            conditions.append(submissions.c.created_at >= filters.start)
        if filters.end is not None:
            conditions.append(submissions.c.created_at <= filters.end)
        stmt = (
            store.submission_select()
            .where(*conditions)
            .order_by(submissions.c.created_at.desc(), submissions.c.id.desc())
        )
        if filters.limit is not None:
            stmt = stmt.limit(filters.limit)
        stmt = stmt.offset(filters.offset)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
            total = (
                await conn.execute(select(func.count()).select_from(submissions).where(*conditions))
            ).scalar_one()
        return [SubmissionView.from_row(r) for r in rows], int(total)

    async def get(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> SubmissionView:
        form_id = await self._form(actor, "submission.read", project_id, xml_form_id)
        async with self._db.read() as conn:
            row = await self._submission(conn, form_id, draft, instance_id)
            return await store.submission_view(conn, row["id"])

    async def version_rows(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> list[RowMapping]:
        form_id = await self._form(actor, "submission.read", project_id, xml_form_id)
        async with self._db.read() as conn:
            row = await self._submission(conn, form_id, draft, instance_id)
            stmt = (
                select(versions).where(versions.c.submission_id == row["id"]).order_by(versions.c.id.desc())
            )
            return list((await conn.execute(stmt)).mappings().all())

    async def versions(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> list[VersionView]:
        return [
            VersionView.from_row(r)
            for r in await self.version_rows(actor, project_id, xml_form_id, instance_id, draft)
        ]

    async def xml(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        draft: bool,
        version: str | None = None,
    ) -> bytes:
        """The current version's XML, byte for byte (or a given version's)."""
        rows = await self.version_rows(actor, project_id, xml_form_id, instance_id, draft)
        for row in rows:
            if (version is None and row["current"]) or row["instance_id"] == version:
                return bytes(row["xml"])
        raise Problem(problems.NOT_FOUND)

    async def data(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> Any:
        rows = await self.version_rows(actor, project_id, xml_form_id, instance_id, draft)
        current = next(r for r in rows if r["current"])
        return {"data": current["data"], "flags": current["flags"], "findings": current["findings"]}

    async def form_findings(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        draft: bool,
        outcome: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Rule findings of the current versions of a form's live submissions, newest first."""
        form_id = await self._form(actor, "submission.read", project_id, xml_form_id)
        finding = func.jsonb_array_elements(versions.c.findings).table_valued("value").render_derived("f")
        stmt = (
            select(submissions.c.instance_id, versions.c.instance_id.label("version_id"), finding.c.value)
            .select_from(submissions)
            .join(versions, versions.c.id == submissions.c.current_version_id)
            .join(finding, true())
            .where(
                submissions.c.form_id == form_id,
                submissions.c.draft == draft,
                submissions.c.deleted_at.is_(None),
            )
            .order_by(submissions.c.created_at.desc(), submissions.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if outcome is not None:
            stmt = stmt.where(finding.c.value.op("->>")("outcome") == outcome)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [{"instanceId": r.instance_id, "versionInstanceId": r.version_id, **r.value} for r in rows]

    # -- attachments ----------------------------------------------------------------------
    async def attachments(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> list[dict[str, Any]]:
        form_id = await self._form(actor, "submission.read", project_id, xml_form_id)
        async with self._db.read() as conn:
            row = await self._submission(conn, form_id, draft, instance_id)
            rows = await store.attachments_of(conn, row["current_version_id"])
        return [{"name": r["name"], "exists": r["blob_sha256"] is not None} for r in rows]

    async def attachment(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool, name: str
    ) -> AttachmentFile:
        form_id = await self._form(actor, "submission.read", project_id, xml_form_id)
        async with self._db.read() as conn:
            row = await self._submission(conn, form_id, draft, instance_id)
            found = [
                r for r in await store.attachments_of(conn, row["current_version_id"]) if r["name"] == name
            ]
        if not found or found[0]["blob_sha256"] is None:
            raise Problem(problems.NOT_FOUND)
        a = found[0]
        return AttachmentFile(
            a["name"],
            a["blob_sha256"],
            a["blob_md5"],
            a["content_type"] or "application/octet-stream",
            a["blob_size"],
        )

    def blob_chunks(self, sha256: str) -> Iterator[bytes]:
        """A stored file in pieces (blocking reads: iterate it in a worker thread)."""
        return self._blobs.chunks(sha256)

    async def put_attachment(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        draft: bool,
        name: str,
        data: bytes,
        content_type: str | None,
    ) -> None:
        form_id = await self._form(actor, "submission.update", project_id, xml_form_id)
        ref = await anyio.to_thread.run_sync(self._blobs.put, data)
        async with self._db.transaction() as conn:
            row = await self._submission(conn, form_id, draft, instance_id, lock=True)
            result = await conn.execute(
                update(attachments)
                .where(attachments.c.version_id == row["current_version_id"], attachments.c.name == name)
                .values(
                    blob_sha256=ref.sha256,
                    blob_md5=ref.md5,
                    blob_size=ref.size,
                    content_type=content_type or "application/octet-stream",
                    updated_at=func.now(),
                )
            )
            if result.rowcount == 0:
                raise Problem(
                    problems.NOT_FOUND, f"The submission does not expect an attachment named {name}."
                )
            await record_audit(
                conn,
                actor,
                "submission.attachment.update",
                "submission",
                instance_id,
                project_id=project_id,
                details={"name": name, "sha256": ref.sha256},
            )
            await _attachments_updated(conn, project_id, xml_form_id, instance_id, row["id"])

    async def clear_attachment(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool, name: str
    ) -> None:
        form_id = await self._form(actor, "submission.update", project_id, xml_form_id)
        async with self._db.transaction() as conn:
            row = await self._submission(conn, form_id, draft, instance_id, lock=True)
            result = await conn.execute(
                update(attachments)
                .where(
                    attachments.c.version_id == row["current_version_id"],
                    attachments.c.name == name,
                    attachments.c.blob_sha256.is_not(None),
                )
                .values(
                    blob_sha256=None, blob_md5=None, blob_size=None, content_type=None, updated_at=func.now()
                )
            )
            if result.rowcount == 0:
                raise Problem(problems.NOT_FOUND)
            await record_audit(
                conn,
                actor,
                "submission.attachment.update",
                "submission",
                instance_id,
                project_id=project_id,
                details={"name": name, "cleared": True},
            )
            await _attachments_updated(conn, project_id, xml_form_id, instance_id, row["id"])

    # -- review, comments, lifecycle --------------------------------------------------------
    async def set_review_state(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        draft: bool,
        state: str | None,
    ) -> SubmissionView:
        if state is not None and state not in REVIEW_STATES:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                f"reviewState must be one of {', '.join(REVIEW_STATES)}.",
                {"field": "reviewState", "value": state},
            )
        form_id = await self._form(actor, "submission.update", project_id, xml_form_id)
        async with self._db.transaction() as conn:
            row = await self._submission(conn, form_id, draft, instance_id, lock=True)
            await conn.execute(
                update(submissions)
                .where(submissions.c.id == row["id"])
                .values(review_state=state, updated_at=func.now())
            )
            await record_audit(
                conn,
                actor,
                "submission.update",
                "submission",
                instance_id,
                project_id=project_id,
                details={"reviewState": state, "previous": row["review_state"]},
            )
            await emit(
                conn,
                "submission.reviewed",
                {
                    "projectId": project_id,
                    "xmlFormId": xml_form_id,
                    "instanceId": instance_id,
                    "submissionId": row["id"],
                    "reviewState": state,
                    "previous": row["review_state"],
                },
            )
            return await store.submission_view(conn, row["id"])

    async def list_comments(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> list[dict[str, Any]]:
        form_id = await self._form(actor, "submission.read", project_id, xml_form_id)
        async with self._db.read() as conn:
            row = await self._submission(conn, form_id, draft, instance_id)
            stmt = select(comments).where(comments.c.submission_id == row["id"]).order_by(comments.c.id)
            rows = (await conn.execute(stmt)).mappings().all()
        return [_comment_json(r) for r in rows]

    async def add_comment(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool, body: str
    ) -> dict[str, Any]:
        if not body.strip():
            raise Problem(problems.UNEXPECTED_VALUE, "A comment needs a body.", {"field": "body"})
        if len(body) > MAX_COMMENT_LENGTH:
            raise Problem(problems.VALUE_TOO_LONG, details={"field": "body", "max": MAX_COMMENT_LENGTH})
        form_id = await self._form(actor, "submission.update", project_id, xml_form_id)
        async with self._db.transaction() as conn:
            row = await self._submission(conn, form_id, draft, instance_id)
            comment = (
                (
                    await conn.execute(
                        insert(comments)
                        .values(
                            submission_id=row["id"],
                            actor_id=actor.id if actor.id > 0 else None,
                            body=body,
                            created_at=func.now(),
                        )
                        .returning(comments)
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(
                conn,
                actor,
                "submission.comment",
                "submission",
                instance_id,
                project_id=project_id,
                details={"commentId": comment["id"]},
            )
        return _comment_json(comment)

    async def delete(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> None:
        form_id = await self._form(actor, "submission.delete", project_id, xml_form_id)
        async with self._db.transaction() as conn:
            row = await self._submission(conn, form_id, draft, instance_id, lock=True)
            await conn.execute(
                update(submissions).where(submissions.c.id == row["id"]).values(deleted_at=func.now())
            )
            await record_audit(
                conn, actor, "submission.delete", "submission", instance_id, project_id=project_id
            )
            await emit(
                conn,
                "submission.deleted",
                {
                    "projectId": project_id,
                    "xmlFormId": xml_form_id,
                    "instanceId": instance_id,
                    "submissionId": row["id"],
                },
            )

    async def restore(
        self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, draft: bool
    ) -> None:
        form_id = await self._form(actor, "submission.restore", project_id, xml_form_id)
        async with self._db.transaction() as conn:
            row = await self._submission(conn, form_id, draft, instance_id, deleted=True, lock=True)
            await conn.execute(
                update(submissions).where(submissions.c.id == row["id"]).values(deleted_at=None)
            )
            await record_audit(
                conn, actor, "submission.restore", "submission", instance_id, project_id=project_id
            )
            await emit(
                conn,
                "submission.restored",
                {
                    "projectId": project_id,
                    "xmlFormId": xml_form_id,
                    "instanceId": instance_id,
                    "submissionId": row["id"],
                },
            )


async def _attachments_updated(
    conn: AsyncConnection, project_id: int, xml_form_id: str, instance_id: str, submission_id: int
) -> None:
    """The event a resend with more files also emits: read models recount attachments."""
    await emit(
        conn,
        "submission.attachments.updated",
        {
            "projectId": project_id,
            "xmlFormId": xml_form_id,
            "instanceId": instance_id,
            "submissionId": submission_id,
        },
    )


def _comment_json(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "body": row["body"],
        "actorId": row["actor_id"],
        "createdAt": iso(row["created_at"]),
    }
