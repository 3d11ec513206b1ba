"""Uploading form definitions: XForms directly, XLSForms through a conversion that survives
request timeouts and crashes.

An XLSForm upload is stored first (blob store, then a `forms.conversions` row), then
converted in a worker process. The request waits a bounded time: if the conversion is done
it answers like ODK Central (the form, or 400.15/400.16); otherwise 202 with a conversion
handle to poll. Conversions interrupted by a crash are resumed when the server starts.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor, ActorType, Grant
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms.adapters.conversion import (
    SPREADSHEET_TYPES,
    ConversionCrashed,
    ConversionTimeout,
    Converter,
)
from odk_mcp.services.forms.adapters.tables import conversions, projects
from odk_mcp.services.forms.catalog import FormCatalog, ParsedDefinition, parse_off_loop
from odk_mcp.services.forms.drafts import Drafts
from odk_mcp.services.forms.views import ConversionView, FormView

log = structlog.get_logger("odk_mcp.forms.uploads")

XML_TYPES = frozenset({"application/xml", "text/xml"})


@dataclass(frozen=True)
class UploadOptions:
    publish: bool = False
    ignore_warnings: bool = False
    fallback_id: str | None = None
    target_form: str | None = None  # set for a new draft of an existing form

    def to_json(self) -> dict[str, Any]:
        return {
            "publish": self.publish,
            "ignoreWarnings": self.ignore_warnings,
            "fallbackId": self.fallback_id,
            "targetForm": self.target_form,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadOptions:
        return cls(data["publish"], data["ignoreWarnings"], data["fallbackId"], data["targetForm"])


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def problem_json(problem: Problem) -> dict[str, Any]:
    return {"code": problem.code, "message": problem.message, "details": problem.details}


class FormUploads:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        catalog: FormCatalog,
        drafts: Drafts,
        converter: Converter,
        blobs: BlobStore,
        wait_seconds: float,
        stale_after_seconds: float,
    ) -> None:
        self._db = db
        self._authz = authorizer
        self._catalog = catalog
        self._drafts = drafts
        self._converter = converter
        self._blobs = blobs
        self._wait = wait_seconds
        self._stale_after = stale_after_seconds
        self._running: set[asyncio.Task[FormView]] = set()

    async def upload(
        self, actor: Actor, project_id: int, body: bytes, content_type: str | None, options: UploadOptions
    ) -> FormView | ConversionView:
        """A new form (`target_form` None) or a new draft of a form, from XForm or XLSForm bytes."""
        if options.target_form is None:
            self._authz.require(actor, "form.create", project_id)
        else:
            self._authz.require(actor, "form.update", project_id, options.target_form)
        kind = media_type(content_type)
        if kind in XML_TYPES:
            definition = await parse_off_loop(body, self._catalog.max_form_bytes)
            return await self._store(actor, project_id, definition, options, None)
        if kind not in SPREADSHEET_TYPES:
            raise Problem(
                problems.UNSUPPORTED_MEDIA_TYPE,
                "Upload an XForm (application/xml) or an XLSForm (.xlsx, .xls, .csv or .md content type).",
                {"contentType": kind, "allowed": sorted(XML_TYPES | set(SPREADSHEET_TYPES))},
            )
        if not body:
            raise Problem(
                problems.XLSFORM_NOT_VALID, "The uploaded XLSForm is empty.", {"error": "empty body"}
            )
        async with self._db.read() as conn:
            exists = await conn.execute(
                select(projects.c.id).where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
            )
            if exists.first() is None:
                raise Problem(problems.NOT_FOUND)
        ref = await anyio.to_thread.run_sync(self._blobs.put, body)
        conversion_id = uuid.uuid4()
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(conversions).values(
                    id=conversion_id,
                    project_id=project_id,
                    actor_id=actor.id if actor.id > 0 else None,
                    source_sha256=ref.sha256,
                    source_type=kind,
                    params=options.to_json(),
                    status="running",
                    attempts=1,
                    created_at=func.now(),
                    updated_at=func.now(),
                )
            )
        task = asyncio.create_task(
            self._convert(conversion_id, actor, project_id, body, kind, ref.sha256, options)
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        done, _ = await asyncio.wait({task}, timeout=self._wait)
        if done:
            return task.result()
        return await self._view(conversion_id)

    async def _convert(
        self,
        conversion_id: uuid.UUID,
        actor: Actor,
        project_id: int,
        body: bytes,
        kind: str,
        sha256: str,
        options: UploadOptions,
    ) -> FormView:
        try:
            try:
                result = await self._converter.convert(body, SPREADSHEET_TYPES[kind], options.fallback_id)
            except (ConversionTimeout, ConversionCrashed) as exc:
                raise Problem(problems.CONVERSION_LIMITS, details={"reason": type(exc).__name__}) from exc
            if result.error is not None or result.xform is None:
                raise Problem(
                    problems.XLSFORM_NOT_VALID, details={"error": result.error, "kind": result.error_kind}
                )
            definition = await parse_off_loop(
                result.xform.encode("utf-8"),
                self._catalog.max_form_bytes,
                warnings=result.warnings,
                ignore_warnings=options.ignore_warnings,
                source=(sha256, kind),
                itemsets=result.itemsets,
            )

            async def mark_done(conn: AsyncConnection, xml_form_id: str) -> None:
                await conn.execute(
                    update(conversions)
                    .where(conversions.c.id == conversion_id)
                    .values(status="done", xml_form_id=xml_form_id, updated_at=func.now())
                )

            return await self._store(actor, project_id, definition, options, mark_done)
        except Problem as problem:
            await self._fail(conversion_id, problem_json(problem))
            raise
        except Exception:
            log.exception("conversion_failed", conversion_id=str(conversion_id))
            await self._fail(conversion_id, problem_json(Problem(problems.INTERNAL)))
            raise

    async def _store(
        self, actor: Actor, project_id: int, definition: ParsedDefinition, options: UploadOptions, also: Any
    ) -> FormView:
        if options.target_form is not None:
            return await self._drafts.create(actor, project_id, options.target_form, definition, also=also)
        return await self._catalog.create(actor, project_id, definition, options.publish, also=also)

    async def _fail(self, conversion_id: uuid.UUID, problem: dict[str, Any]) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(conversions)
                .where(conversions.c.id == conversion_id)
                .values(status="failed", problem=problem, updated_at=func.now())
            )

    async def _view(self, conversion_id: uuid.UUID) -> ConversionView:
        async with self._db.read() as conn:
            row = (
                (await conn.execute(select(conversions).where(conversions.c.id == conversion_id)))
                .mappings()
                .one()
            )
        return ConversionView.from_row(row)

    async def status(self, actor: Actor, project_id: int, conversion_id: str) -> ConversionView:
        self._authz.require(actor, "form.create", project_id)
        try:
            key = uuid.UUID(conversion_id)
        except ValueError as exc:
            raise Problem(problems.NOT_FOUND) from exc
        async with self._db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(conversions).where(
                            conversions.c.id == key, conversions.c.project_id == project_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise Problem(problems.NOT_FOUND)
        return ConversionView.from_row(row)

    async def resume_unfinished(self) -> int:
        """Restart conversions a crash interrupted (claimed once, so replicas do not collide)."""
        claim = text(
            "UPDATE forms.conversions SET status = 'running', attempts = attempts + 1, updated_at = now()"
            " WHERE status IN ('pending', 'running') AND updated_at < now() - make_interval(secs => :stale)"
            " RETURNING id, project_id, actor_id, source_sha256, source_type, params"
        )
        async with self._db.transaction() as conn:
            rows = (await conn.execute(claim, {"stale": self._stale_after})).mappings().all()
        for row in rows:
            # Permission was checked when the upload was accepted; act for that actor now.
            actor = Actor(
                id=row["actor_id"] or -1,
                type=ActorType.USER,
                display_name="resumed upload",
                grants=(Grant(1),),
            )
            body = await anyio.to_thread.run_sync(self._blobs.read, row["source_sha256"])
            task = asyncio.create_task(
                self._convert(
                    row["id"],
                    actor,
                    row["project_id"],
                    body,
                    row["source_type"],
                    row["source_sha256"],
                    UploadOptions.from_json(row["params"]),
                )
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(rows)

    async def wait_idle(self) -> None:
        """Let running conversions finish (shutdown, tests)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
