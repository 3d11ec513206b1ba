"""Forms: creating a form from an XForm, reading forms and versions, lifecycle (state, delete,
restore). Drafts live in drafts.py, uploads and XLSForm conversion in uploads.py."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import func, insert, select, update
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
from odk_mcp.services.forms.adapters.tables import form_attachments, form_defs, forms, projects
from odk_mcp.services.forms.domain.attachments import ExpectedAttachment, safe_name
from odk_mcp.services.forms.domain.safe_xml import UnsafeXml
from odk_mcp.services.forms.domain.schema import FormSchema, InvalidXForm, read_form
from odk_mcp.services.forms.lookup import FormLookup
from odk_mcp.services.forms.views import FormView

STATES = ("open", "closing", "closed")
ITEMSETS = "itemsets.csv"


@dataclass(frozen=True)
class ParsedDefinition:
    """An XForm checked and parsed once: what gets stored as a form definition."""

    xml: bytes
    schema: FormSchema
    schema_json: dict[str, Any]  # serialised once: stored with the definition and in the event
    attachments: tuple[ExpectedAttachment, ...]
    md5: str
    sha256: str
    source_sha256: str | None = None
    source_type: str | None = None
    itemsets: bytes | None = None
    public_key: str | None = None  # an encrypted form's base64RsaPublicKey


def parse_definition(
    xml: bytes,
    max_bytes: int,
    warnings: list[str] | None = None,
    ignore_warnings: bool = False,
    source: tuple[str, str] | None = None,
    itemsets: str | None = None,
) -> ParsedDefinition:
    """Check an XForm (safe parse, schema, warnings) before anything is stored."""
    try:
        schema, attachments, public_key = read_form(xml, max_bytes)
    except UnsafeXml as exc:
        raise Problem(
            problems.UNPARSEABLE, f"Could not parse the given data as XML: {exc}", {"format": "xml"}
        ) from exc
    except InvalidXForm as exc:
        raise Problem(problems.XFORM_NOT_VALID, f"The given XForm is not valid: {exc}") from exc
    form_id = schema.xml_form_id
    if not safe_name(form_id) or form_id.lower().endswith((".xml", ".xls", ".xlsx")):
        # A form id is a URL path segment (and Central refuses the file-extension endings).
        raise Problem(
            problems.UNEXPECTED_VALUE,
            "The form id cannot contain slashes, backslashes or control characters, be '.' or '..',"
            " or end in .xml, .xls or .xlsx.",
            {"field": "formId", "value": form_id},
        )
    if warnings and not ignore_warnings:
        raise Problem(problems.FORM_WARNINGS, details={"warnings": {"xlsFormWarnings": warnings}})
    return ParsedDefinition(
        xml=xml,
        schema=schema,
        schema_json=schema.to_json(),
        attachments=attachments,
        md5=hashlib.md5(xml, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(xml).hexdigest(),
        source_sha256=source[0] if source else None,
        source_type=source[1] if source else None,
        itemsets=itemsets.encode() if itemsets is not None else None,
        public_key=public_key,
    )


async def parse_off_loop(xml: bytes, max_bytes: int, **options: Any) -> ParsedDefinition:
    """parse_definition in a worker thread: a large form must not stall other requests."""
    return await anyio.to_thread.run_sync(functools.partial(parse_definition, xml, max_bytes, **options))


def form_event(project_id: int, definition: ParsedDefinition, def_id: int) -> dict[str, Any]:
    """The `form.published` payload: everything downstream services need, schema included."""
    return {
        "projectId": project_id,
        "xmlFormId": definition.schema.xml_form_id,
        "version": definition.schema.version,
        "formDefId": def_id,
        "hash": definition.md5,
        "schema": definition.schema_json,
    }


class FormAccess:
    """Who may see which form: `form.*` verbs see every form, `open_form.*` only open ones."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authz = authorizer

    def can_read(self, actor: Actor, project_id: int, xml_form_id: str, state: str) -> bool:
        if self.authz.can(actor, "form.read", project_id, xml_form_id):
            return True
        return state == "open" and self.authz.can(actor, "open_form.read", project_id, xml_form_id)

    def require_read(
        self, actor: Actor, row: RowMapping | None, project_id: int, xml_form_id: str
    ) -> RowMapping:
        """The form row if the actor may read it; 404 when it does not exist (to those who could know)."""
        if row is not None and self.can_read(actor, project_id, xml_form_id, row["state"]):
            return row
        if row is None and (
            self.authz.can(actor, "form.list", project_id)
            or self.authz.can(actor, "open_form.list", project_id)
        ):
            raise Problem(problems.NOT_FOUND)
        if actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)
        raise Problem(problems.INSUFFICIENT_RIGHTS if row is not None else problems.NOT_FOUND)


class FormCatalog:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        blobs: BlobStore,
        max_form_bytes: int,
        lookup: FormLookup | None = None,
    ) -> None:
        self._db = db
        self._lookup = lookup if lookup is not None else FormLookup(db)
        self._authz = authorizer
        self.access = FormAccess(authorizer)
        self._blobs = blobs
        self.max_form_bytes = max_form_bytes

    # -- creation -------------------------------------------------------------------------
    async def create(
        self,
        actor: Actor,
        project_id: int,
        definition: ParsedDefinition,
        publish: bool,
        also: Callable[[AsyncConnection, str], Awaitable[None]] | None = None,
    ) -> FormView:
        """Store a new form with its first definition, published or as a draft."""
        self._authz.require(actor, "form.create", project_id)
        await self.store_itemsets(definition)
        xml_form_id = definition.schema.xml_form_id
        async with self._lookup.changing() as conn:
            project = await conn.execute(
                select(projects.c.id).where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
            )
            if project.first() is None:
                raise Problem(problems.NOT_FOUND)
            taken = await conn.execute(
                select(forms.c.id).where(
                    forms.c.project_id == project_id,
                    forms.c.xml_form_id == xml_form_id,
                    forms.c.deleted_at.is_(None),
                )
            )
            if taken.first() is not None:
                raise Problem(
                    problems.UNIQUENESS_VIOLATION,
                    f"A form with the id {xml_form_id} already exists in this project.",
                    {"fields": ["xmlFormId", "projectId"], "values": [xml_form_id, project_id]},
                )
            form_id = (
                await conn.execute(
                    insert(forms)
                    .values(
                        project_id=project_id,
                        xml_form_id=xml_form_id,
                        state="open",
                        created_at=func.now(),
                        created_by=actor.id if actor.id > 0 else None,
                    )
                    .returning(forms.c.id)
                )
            ).scalar_one()
            def_id = await insert_definition(conn, form_id, definition, publish)
            # A form created as a draft can be tested on a device at once (as in Central).
            draft_token = None if publish else new_token()
            await conn.execute(
                update(forms)
                .where(forms.c.id == form_id)
                .values(
                    **(
                        {"current_def_id": def_id}
                        if publish
                        else {"draft_def_id": def_id, "draft_token_hash": hash_token(draft_token or "")}
                    )
                )
            )
            await record_audit(
                conn,
                actor,
                "form.create",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"version": definition.schema.version, "published": publish},
            )
            if publish:
                await record_audit(
                    conn, actor, "form.update.publish", "form", xml_form_id, project_id=project_id
                )
                await emit(conn, "form.published", form_event(project_id, definition, def_id))
            if also is not None:
                await also(conn, xml_form_id)
            row = await store.live_form(conn, project_id, xml_form_id)
        assert row is not None
        return FormView.from_row(row, draft_token=draft_token)

    async def store_itemsets(self, definition: ParsedDefinition) -> None:
        if definition.itemsets is not None:
            await anyio.to_thread.run_sync(self._blobs.put, definition.itemsets)

    # -- reading --------------------------------------------------------------------------
    async def list_forms(self, actor: Actor, project_id: int, deleted: bool = False) -> list[FormView]:
        """The forms of a project the actor may see (trashed ones with `deleted`)."""
        if deleted:
            self._authz.require(actor, "form.restore", project_id)
        elif not (
            self._authz.can(actor, "form.list", project_id)
            or self._authz.can(actor, "open_form.list", project_id)
            or any(g.project_id == project_id and g.form_id for g in actor.grants)
        ):
            self._authz.require(actor, "form.list", project_id)
        stmt = store.form_select().where(forms.c.project_id == project_id)
        stmt = stmt.where(forms.c.deleted_at.is_not(None) if deleted else forms.c.deleted_at.is_(None))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt.order_by(forms.c.xml_form_id))).mappings().all()
        return [
            FormView.from_row(r)
            for r in rows
            if deleted or self.access.can_read(actor, project_id, r["xml_form_id"], r["state"])
        ]

    async def get(self, actor: Actor, project_id: int, xml_form_id: str) -> FormView:
        async with self._db.read() as conn:
            row = await store.live_form(conn, project_id, xml_form_id)
        return FormView.from_row(self.access.require_read(actor, row, project_id, xml_form_id))

    async def definition(
        self, actor: Actor, project_id: int, xml_form_id: str, version: str | None = None, draft: bool = False
    ) -> RowMapping:
        """The stored definition row (xml, schema, source) of the published form, a version, or the draft."""
        async with self._db.read() as conn:
            row = await store.live_form(conn, project_id, xml_form_id)
            self.access.require_read(actor, row, project_id, xml_form_id)
            assert row is not None
            if draft:
                def_id = row["draft_def_id"]
            elif version is not None:
                found = await conn.execute(
                    select(form_defs.c.id).where(
                        form_defs.c.form_id == row["id"],
                        form_defs.c.version == version,
                        form_defs.c.published_at.is_not(None),
                    )
                )
                def_id = found.scalar_one_or_none()
            else:
                def_id = row["def_id"]
            definition = await store.def_row(conn, def_id) if def_id is not None else None
        if definition is None:
            raise Problem(problems.NOT_FOUND)
        return definition

    async def keys(self, actor: Actor, project_id: int, xml_form_id: str) -> list[dict[str, Any]]:
        """The public keys the form's published versions encrypt to (`[]` for a plain form); for
        those who may read its submissions, as in Central."""
        async with self._db.read() as conn:
            row = await store.live_form(conn, project_id, xml_form_id)
            self.access.require_read(actor, row, project_id, xml_form_id)
            assert row is not None
            self.access.authz.require(actor, "submission.read", project_id, xml_form_id)
            found = await store.keys_of_form(conn, row["id"])
        return [dict(k) for k in found]

    async def versions(self, actor: Actor, project_id: int, xml_form_id: str) -> list[FormView]:
        async with self._db.read() as conn:
            row = await store.live_form(conn, project_id, xml_form_id)
            self.access.require_read(actor, row, project_id, xml_form_id)
            assert row is not None
            stmt = (
                store.form_select(def_id=form_defs.c.id)
                .where(
                    forms.c.id == row["id"],
                    form_defs.c.form_id == row["id"],
                    form_defs.c.published_at.is_not(None),
                )
                .order_by(form_defs.c.published_at.desc())
            )
            rows = (await conn.execute(stmt)).mappings().all()
        return [FormView.from_row(r) for r in rows]

    def read_blob(self, sha256: str) -> bytes:
        return self._blobs.read(sha256)

    # -- lifecycle ------------------------------------------------------------------------
    async def set_state(self, actor: Actor, project_id: int, xml_form_id: str, state: str) -> FormView:
        if state not in STATES:
            raise Problem(
                problems.UNEXPECTED_VALUE, f"state must be one of {', '.join(STATES)}.", {"field": "state"}
            )
        self._authz.require(actor, "form.update", project_id, xml_form_id)
        async with self._lookup.changing() as conn:
            row = await store.lock_form(conn, project_id, xml_form_id)
            if row is None:
                raise Problem(problems.NOT_FOUND)
            if row["state"] != state:
                await conn.execute(
                    update(forms).where(forms.c.id == row["id"]).values(state=state, updated_at=func.now())
                )
                await record_audit(
                    conn,
                    actor,
                    "form.update",
                    "form",
                    xml_form_id,
                    project_id=project_id,
                    details={"state": state, "previous": row["state"]},
                )
                await emit(
                    conn,
                    "form.state_changed",
                    {
                        "projectId": project_id,
                        "xmlFormId": xml_form_id,
                        "state": state,
                        "previous": row["state"],
                    },
                )
            view = await store.live_form(conn, project_id, xml_form_id)
        assert view is not None
        return FormView.from_row(view)

    async def delete(self, actor: Actor, project_id: int, xml_form_id: str) -> None:
        """Soft delete: the form goes to the trash and can be restored by its numeric id."""
        self._authz.require(actor, "form.delete", project_id, xml_form_id)
        async with self._lookup.changing() as conn:
            row = await store.lock_form(conn, project_id, xml_form_id)
            if row is None:
                raise Problem(problems.NOT_FOUND)
            await conn.execute(update(forms).where(forms.c.id == row["id"]).values(deleted_at=func.now()))
            await record_audit(
                conn,
                actor,
                "form.delete",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"id": row["id"]},
            )
            await emit(
                conn, "form.deleted", {"projectId": project_id, "xmlFormId": xml_form_id, "id": row["id"]}
            )

    async def restore(self, actor: Actor, project_id: int, form_id: int) -> FormView:
        self._authz.require(actor, "form.restore", project_id)
        async with self._lookup.changing() as conn:
            row = (
                (
                    await conn.execute(
                        select(forms)
                        .where(
                            forms.c.id == form_id,
                            forms.c.project_id == project_id,
                            forms.c.deleted_at.is_not(None),
                        )
                        .with_for_update()
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise Problem(problems.NOT_FOUND)
            clash = await store.live_form(conn, project_id, row["xml_form_id"])
            if clash is not None:
                raise Problem(
                    problems.UNIQUENESS_VIOLATION,
                    f"Another live form already uses the id {row['xml_form_id']}.",
                    {"fields": ["xmlFormId", "projectId"], "values": [row["xml_form_id"], project_id]},
                )
            await conn.execute(
                update(forms).where(forms.c.id == form_id).values(deleted_at=None, updated_at=func.now())
            )
            await record_audit(
                conn,
                actor,
                "form.restore",
                "form",
                row["xml_form_id"],
                project_id=project_id,
                details={"id": form_id},
            )
            view = await store.live_form(conn, project_id, row["xml_form_id"])
        assert view is not None
        return FormView.from_row(view)


async def insert_definition(
    conn: AsyncConnection,
    form_id: int,
    definition: ParsedDefinition,
    publish: bool,
    carried: dict[str, RowMapping] | None = None,
) -> int:
    """Insert a definition and its expected attachments (content carried over by name, or itemsets)."""
    schema = definition.schema
    key_id = await store.key_id(conn, definition.public_key) if definition.public_key else None
    def_id: int = (
        await conn.execute(
            insert(form_defs)
            .values(
                form_id=form_id,
                key_id=key_id,
                version=schema.version,
                name=schema.title,
                xml=definition.xml,
                md5=definition.md5,
                sha256=definition.sha256,
                schema=definition.schema_json,
                source_sha256=definition.source_sha256,
                source_type=definition.source_type,
                created_at=func.now(),
                published_at=func.now() if publish else None,
            )
            .returning(form_defs.c.id)
        )
    ).scalar_one()
    rows = []
    for expected in definition.attachments:
        values: dict[str, Any] = {
            "form_def_id": def_id,
            "name": expected.name,
            "type": expected.type,
            # Every row of one multi-row INSERT needs the same keys.
            **dict.fromkeys(("blob_sha256", "blob_md5", "blob_size", "content_type", "updated_at")),
        }
        previous = (carried or {}).get(expected.name)
        if previous is not None and previous["blob_sha256"] is not None:
            values.update(
                blob_sha256=previous["blob_sha256"],
                blob_md5=previous["blob_md5"],
                blob_size=previous["blob_size"],
                content_type=previous["content_type"],
                updated_at=previous["updated_at"],
            )
        elif expected.name == ITEMSETS and definition.itemsets is not None:
            data = definition.itemsets
            values.update(
                blob_sha256=hashlib.sha256(data).hexdigest(),
                blob_md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                blob_size=len(data),
                content_type="text/csv",
            )
        rows.append(values)
    if rows:
        await conn.execute(insert(form_attachments), rows)
    return def_id
