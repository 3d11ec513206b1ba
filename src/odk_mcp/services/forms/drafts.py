"""Drafts: a new definition tested before publishing, its attachments, and publishing it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import anyio
from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import emit, record_audit
from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.tokens import hash_token, new_token
from odk_mcp.services.forms.adapters import store
from odk_mcp.services.forms.adapters.tables import form_attachments, form_defs, forms
from odk_mcp.services.forms.catalog import (
    FormAccess,
    ParsedDefinition,
    form_event,
    insert_definition,
    parse_off_loop,
)
from odk_mcp.services.forms.datasets import DatasetAttachments, link_datasets
from odk_mcp.services.forms.domain.schema import FormSchema
from odk_mcp.services.forms.domain.versions import with_version
from odk_mcp.services.forms.lookup import FormLookup
from odk_mcp.services.forms.views import AttachmentView, FormView

AlsoInTransaction = Callable[[AsyncConnection, str], Awaitable[None]]


class Drafts:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        blobs: BlobStore,
        max_form_bytes: int,
        lookup: FormLookup | None = None,
        datasets: DatasetAttachments | None = None,
    ) -> None:
        self._db = db
        self._lookup = lookup if lookup is not None else FormLookup(db)
        self._datasets = datasets
        self._authz = authorizer
        self._access = FormAccess(authorizer)
        self._blobs = blobs
        self._max_form_bytes = max_form_bytes

    async def _locked(self, conn: AsyncConnection, project_id: int, xml_form_id: str) -> RowMapping:
        row = await store.lock_form(conn, project_id, xml_form_id)
        if row is None:
            raise Problem(problems.NOT_FOUND)
        return row

    async def create(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        definition: ParsedDefinition | None,
        also: AlsoInTransaction | None = None,
    ) -> FormView:
        """Set a new draft from a definition, or (None) from a copy of the published one."""
        self._authz.require(actor, "form.update", project_id, xml_form_id)
        if definition is not None:
            if definition.schema.xml_form_id != xml_form_id:
                raise Problem(
                    problems.UNEXPECTED_VALUE,
                    f"The uploaded form's id ({definition.schema.xml_form_id}) does not match {xml_form_id}.",
                    {"field": "xmlFormId", "value": definition.schema.xml_form_id},
                )
            if definition.itemsets is not None:
                await anyio.to_thread.run_sync(self._blobs.put, definition.itemsets)
        token = new_token()
        async with self._lookup.changing() as conn:
            form = await self._locked(conn, project_id, xml_form_id)
            carried: dict[str, RowMapping] = {}
            for def_id in (form["current_def_id"], form["draft_def_id"]):
                if def_id is not None:
                    carried.update(
                        {a["name"]: a for a in await store.attachments_of(conn, def_id) if a["blob_sha256"]}
                    )
            if definition is None:
                if form["current_def_id"] is None:
                    raise Problem(problems.NOT_FOUND, "There is no published version to copy into a draft.")
                published = await store.def_row(conn, form["current_def_id"])
                assert published is not None
                definition = await parse_off_loop(bytes(published["xml"]), self._max_form_bytes)
            draft_id = await insert_definition(conn, form["id"], definition, publish=False, carried=carried)
            await conn.execute(
                update(forms)
                .where(forms.c.id == form["id"])
                .values(draft_def_id=draft_id, draft_token_hash=hash_token(token), updated_at=func.now())
            )
            await record_audit(
                conn,
                actor,
                "form.update.draft.set",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"version": definition.schema.version},
            )
            if also is not None:
                await also(conn, xml_form_id)
            row = await store.live_form(conn, project_id, xml_form_id, draft=True)
        assert row is not None
        return FormView.from_row(row, draft_token=token)

    async def get(self, actor: Actor, project_id: int, xml_form_id: str) -> FormView:
        self._authz.require(actor, "form.read", project_id, xml_form_id)
        async with self._db.read() as conn:
            row = await store.live_form(conn, project_id, xml_form_id, draft=True)
        if row is None or row["draft_def_id"] is None:
            raise Problem(problems.NOT_FOUND)
        return FormView.from_row(row)

    async def publish(self, actor: Actor, project_id: int, xml_form_id: str, version: str | None) -> None:
        self._authz.require(actor, "form.update", project_id, xml_form_id)
        async with self._lookup.changing() as conn:
            form = await self._locked(conn, project_id, xml_form_id)
            if form["draft_def_id"] is None:
                raise Problem(problems.NOT_FOUND, "This form has no draft to publish.")
            draft = await store.def_row(conn, form["draft_def_id"])
            assert draft is not None
            parsed = await parse_off_loop(bytes(draft["xml"]), self._max_form_bytes)
            if version is not None:
                rewritten = await anyio.to_thread.run_sync(
                    with_version, parsed.xml, version, self._max_form_bytes
                )
                parsed = await parse_off_loop(rewritten, self._max_form_bytes)
                await conn.execute(
                    update(form_defs)
                    .where(form_defs.c.id == draft["id"])
                    .values(
                        xml=parsed.xml,
                        md5=parsed.md5,
                        sha256=parsed.sha256,
                        version=version,
                        schema=parsed.schema_json,
                    )
                )
            clash = await conn.execute(
                select(form_defs.c.id).where(
                    form_defs.c.form_id == form["id"],
                    form_defs.c.version == parsed.schema.version,
                    form_defs.c.published_at.is_not(None),
                )
            )
            if clash.first() is not None:
                raise Problem(
                    problems.VERSION_CONFLICT,
                    f"A published version of {xml_form_id} already has version '{parsed.schema.version}'.",
                    {"xmlFormId": xml_form_id, "version": parsed.schema.version},
                )
            await conn.execute(
                update(form_defs).where(form_defs.c.id == draft["id"]).values(published_at=func.now())
            )
            await conn.execute(
                update(forms)
                .where(forms.c.id == form["id"])
                .values(
                    current_def_id=draft["id"],
                    draft_def_id=None,
                    draft_token_hash=None,
                    updated_at=func.now(),
                )
            )
            await record_audit(
                conn,
                actor,
                "form.update.publish",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"version": parsed.schema.version},
            )
            await emit(conn, "form.published", form_event(project_id, parsed, draft["id"]))

    async def delete(self, actor: Actor, project_id: int, xml_form_id: str) -> None:
        self._authz.require(actor, "form.update", project_id, xml_form_id)
        async with self._lookup.changing() as conn:
            form = await self._locked(conn, project_id, xml_form_id)
            if form["draft_def_id"] is None:
                raise Problem(problems.NOT_FOUND, "This form has no draft.")
            if form["current_def_id"] is None:
                raise Problem(problems.NO_PUBLISHED_VERSION)
            await conn.execute(
                update(forms)
                .where(forms.c.id == form["id"])
                .values(draft_def_id=None, draft_token_hash=None, updated_at=func.now())
            )
            await record_audit(
                conn, actor, "form.update.draft.delete", "form", xml_form_id, project_id=project_id
            )

    # -- draft attachments ----------------------------------------------------------------
    async def put_attachment(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        name: str,
        data: bytes,
        content_type: str | None,
    ) -> AttachmentView:
        self._authz.require(actor, "form.update", project_id, xml_form_id)
        await self._expects(project_id, xml_form_id, name)
        ref = await anyio.to_thread.run_sync(self._blobs.put, data)
        async with self._db.transaction() as conn:
            form = await self._locked(conn, project_id, xml_form_id)
            if form["draft_def_id"] is None:
                raise Problem(problems.NOT_FOUND, "This form has no draft.")
            result = await conn.execute(
                update(form_attachments)
                .where(
                    form_attachments.c.form_def_id == form["draft_def_id"], form_attachments.c.name == name
                )
                .values(
                    blob_sha256=ref.sha256,
                    blob_md5=ref.md5,
                    blob_size=ref.size,
                    content_type=content_type or "application/octet-stream",
                    updated_at=func.now(),
                )
                .returning(*form_attachments.c)
            )
            row = result.mappings().first()
            if row is None:
                raise Problem(problems.NOT_FOUND, f"The form does not expect an attachment named {name}.")
            await record_audit(
                conn,
                actor,
                "form.attachment.update",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"name": name, "sha256": ref.sha256, "size": ref.size},
            )
        return AttachmentView.from_row(row)

    async def _expects(self, project_id: int, xml_form_id: str, name: str) -> None:
        """404 before any bytes are written when there is no draft or it expects no such file
        (refused uploads must not leave orphan blobs behind)."""
        async with self._db.read() as conn:
            form = await store.live_form(conn, project_id, xml_form_id, draft=True)
            if form is None or form["draft_def_id"] is None:
                raise Problem(problems.NOT_FOUND, "This form has no draft.")
            names = {a["name"] for a in await store.attachments_of(conn, form["draft_def_id"])}
        if name not in names:
            raise Problem(problems.NOT_FOUND, f"The form does not expect an attachment named {name}.")

    async def clear_attachment(self, actor: Actor, project_id: int, xml_form_id: str, name: str) -> None:
        self._authz.require(actor, "form.update", project_id, xml_form_id)
        async with self._db.transaction() as conn:
            form = await self._locked(conn, project_id, xml_form_id)
            if form["draft_def_id"] is None:
                raise Problem(problems.NOT_FOUND, "This form has no draft.")
            result = await conn.execute(
                update(form_attachments)
                .where(
                    form_attachments.c.form_def_id == form["draft_def_id"],
                    form_attachments.c.name == name,
                    form_attachments.c.blob_sha256.is_not(None),
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
                "form.attachment.update",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"name": name, "cleared": True},
            )

    # -- reading attachments (published or draft) -----------------------------------------
    async def attachments(
        self, actor: Actor, project_id: int, xml_form_id: str, draft: bool = False
    ) -> list[AttachmentView]:
        async with self._db.read() as conn:
            row = await store.live_form(conn, project_id, xml_form_id, draft=draft)
            self._access.require_read(actor, row, project_id, xml_form_id)
            assert row is not None
            if row["def_id"] is None:
                raise Problem(problems.NOT_FOUND)
            rows = await store.attachments_of(conn, row["def_id"])
        views = [AttachmentView.from_row(r) for r in rows]
        return await link_datasets(self._datasets, project_id, views, actor)

    async def attachment(
        self, actor: Actor, project_id: int, xml_form_id: str, name: str, draft: bool = False
    ) -> AttachmentView:
        found = [a for a in await self.attachments(actor, project_id, xml_form_id, draft) if a.name == name]
        if not found or not found[0].exists:
            raise Problem(problems.NOT_FOUND)
        return found[0]

    def dataset_csv(self, project_id: int, name: str, actor: Actor | None = None) -> AsyncIterator[bytes]:
        """The CSV of the entity list an attachment is linked to (see `link_datasets`), as
        `actor` receives it (None: a draft-test token, which gets the whole list)."""
        assert self._datasets is not None, "only linked attachments are served from entity lists"
        return self._datasets.csv(project_id, name, actor)

    def blob_chunks(self, sha256: str) -> Iterator[bytes]:
        """A stored file in pieces (blocking reads: iterate it in a worker thread)."""
        return self._blobs.chunks(sha256)


def schema_of_row(definition: RowMapping) -> FormSchema:
    return FormSchema.from_json(definition["schema"])
