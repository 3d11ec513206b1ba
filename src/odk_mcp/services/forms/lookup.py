"""Form lookup for other services: which form definition a submission targets, with its schema.

Definitions never change once stored, so their parsed schemas are cached by definition id.
The target of a submission (form state, the definition for a version) is also remembered, for
`ttl` seconds, per (project, xmlFormId, version, draft): it is read on every submission. The
forms service empties that cache (`invalidate()`) after every change that can alter an answer
(create, publish, new or deleted draft, state change, delete, restore, project change), so in
this process a closed or deleted form stops taking submissions at once; other processes sharing
the database see the change within `ttl` seconds. Misses (unknown form or version) are never
remembered, so a form published elsewhere is found on the next request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.kernel.db import Database
from odk_mcp.kernel.tokens import hash_token
from odk_mcp.services.forms.adapters.tables import form_attachments, form_defs, forms, projects
from odk_mcp.services.forms.domain.schema import FormSchema


@dataclass(frozen=True)
class FormTarget:
    form_id: int
    project_id: int
    xml_form_id: str
    state: str
    def_id: int
    version: str
    schema: FormSchema
    draft: bool


@dataclass(frozen=True)
class FormVersions:
    """A live form's definitions for reading its data: the published ones, oldest first (or
    the draft alone), with their parsed schemas."""

    form_id: int
    project_id: int
    xml_form_id: str
    draft: bool
    def_ids: tuple[int, ...]
    versions: tuple[str, ...]
    schemas: tuple[FormSchema, ...]

    @property
    def current(self) -> FormSchema | None:
        """The newest definition's schema (the draft's for a draft)."""
        return self.schemas[-1] if self.schemas else None


@dataclass(frozen=True)
class TargetMiss:
    """Why no definition matched: the form is unknown, or it has no such version."""

    form_exists: bool


TargetKey = tuple[int, str, str, bool]


class FormLookup:
    def __init__(self, db: Database, cache_size: int = 512, ttl_seconds: float = 0.0) -> None:
        self._db = db
        self._schemas: OrderedDict[int, FormSchema] = OrderedDict()
        self._cache_size = cache_size
        self._ttl = ttl_seconds
        self._targets: OrderedDict[TargetKey, tuple[FormTarget, float]] = OrderedDict()
        self._generation = 0

    def invalidate(self) -> None:
        """Forget every remembered target (the forms service calls it after each change)."""
        self._generation += 1
        self._targets.clear()

    @asynccontextmanager
    async def changing(self) -> AsyncIterator[AsyncConnection]:
        """A forms transaction that may change which definition a submission targets: the
        remembered targets are forgotten once it has ended."""
        try:
            async with self._db.transaction() as conn:
                yield conn
        finally:
            self.invalidate()

    async def for_submission(
        self, project_id: int, xml_form_id: str, version: str, draft: bool = False
    ) -> FormTarget | TargetMiss:
        """The published definition with that version (or the draft, when `draft`)."""
        key = (project_id, xml_form_id, version, draft)
        entry = self._targets.get(key)
        if entry is not None:
            if entry[1] > time.monotonic():
                return entry[0]
            del self._targets[key]
        generation = self._generation
        found = await self._read_target(project_id, xml_form_id, version, draft)
        if isinstance(found, FormTarget) and self._ttl > 0 and generation == self._generation:
            self._targets[key] = (found, time.monotonic() + self._ttl)
            while len(self._targets) > self._cache_size:
                self._targets.popitem(last=False)
        return found

    async def _read_target(
        self, project_id: int, xml_form_id: str, version: str, draft: bool
    ) -> FormTarget | TargetMiss:
        async with self._db.read() as conn:
            form = (
                await conn.execute(
                    select(forms.c.id, forms.c.state, forms.c.current_def_id, forms.c.draft_def_id)
                    .join(projects, projects.c.id == forms.c.project_id)
                    .where(
                        forms.c.project_id == project_id,
                        forms.c.xml_form_id == xml_form_id,
                        forms.c.deleted_at.is_(None),
                        projects.c.deleted_at.is_(None),
                    )
                )
            ).first()
            if form is None:
                return TargetMiss(form_exists=False)
            stmt = select(form_defs.c.id, form_defs.c.version).where(
                form_defs.c.form_id == form.id, form_defs.c.version == version
            )
            if draft:
                stmt = stmt.where(form_defs.c.id == form.draft_def_id)
            else:
                stmt = stmt.where(form_defs.c.published_at.is_not(None))
            found = (await conn.execute(stmt)).first()
            if found is None:
                return TargetMiss(form_exists=True)
            schema = await self._schema(conn, found.id)
        return FormTarget(
            form_id=form.id,
            project_id=project_id,
            xml_form_id=xml_form_id,
            state=form.state,
            def_id=found.id,
            version=found.version,
            schema=schema,
            draft=draft,
        )

    async def live_form_id(self, project_id: int, xml_form_id: str) -> int | None:
        """The numeric id of the live form with that xmlFormId in a live project."""
        async with self._db.read() as conn:
            found: int | None = (
                await conn.execute(
                    select(forms.c.id)
                    .join(projects, projects.c.id == forms.c.project_id)
                    .where(
                        forms.c.project_id == project_id,
                        forms.c.xml_form_id == xml_form_id,
                        forms.c.deleted_at.is_(None),
                        projects.c.deleted_at.is_(None),
                    )
                )
            ).scalar_one_or_none()
        return found

    async def versions(self, project_id: int, xml_form_id: str, draft: bool) -> FormVersions | None:
        """The definitions a live form's published (or draft) data was read against; None when
        the form or project is unknown or deleted."""
        # One round trip: the form (outer-joined to its definitions of interest).
        wanted = form_defs.c.id == forms.c.draft_def_id if draft else form_defs.c.published_at.is_not(None)
        stmt = (
            select(forms.c.id.label("form_id"), form_defs.c.id, form_defs.c.version)
            .join(projects, projects.c.id == forms.c.project_id)
            .outerjoin(form_defs, (form_defs.c.form_id == forms.c.id) & wanted)
            .where(
                forms.c.project_id == project_id,
                forms.c.xml_form_id == xml_form_id,
                forms.c.deleted_at.is_(None),
                projects.c.deleted_at.is_(None),
            )
            .order_by(form_defs.c.published_at, form_defs.c.id)
        )
        async with self._db.read() as conn:
            found = (await conn.execute(stmt)).all()
            if not found:
                return None
            defs = [d for d in found if d.id is not None]
            schemas = [await self._schema(conn, d.id) for d in defs]
        form = found[0]
        return FormVersions(
            form_id=form.form_id,
            project_id=project_id,
            xml_form_id=xml_form_id,
            draft=draft,
            def_ids=tuple(d.id for d in defs),
            versions=tuple(d.version for d in defs),
            schemas=tuple(schemas),
        )

    async def schema_of(self, def_id: int) -> FormSchema | None:
        """The parsed schema of one form definition (cached: definitions never change)."""
        cached = self._schemas.get(def_id)
        if cached is not None:
            return cached
        async with self._db.read() as conn:
            exists = (
                await conn.execute(select(form_defs.c.id).where(form_defs.c.id == def_id))
            ).scalar_one_or_none()
            return await self._schema(conn, def_id) if exists is not None else None

    async def _schema(self, conn: AsyncConnection, def_id: int) -> FormSchema:
        schema = self._schemas.get(def_id)
        if schema is None:
            stmt = select(form_defs.c.schema).where(form_defs.c.id == def_id)
            raw = (await conn.execute(stmt)).scalar_one()
            schema = FormSchema.from_json(raw)
            self._remember(def_id, schema)
        return schema

    def _remember(self, def_id: int, schema: FormSchema) -> None:
        self._schemas[def_id] = schema
        while len(self._schemas) > self._cache_size:
            self._schemas.popitem(last=False)

    async def draft_token_matches(self, project_id: int, xml_form_id: str, token: str) -> bool:
        async with self._db.read() as conn:
            stored = (
                await conn.execute(
                    select(forms.c.draft_token_hash).where(
                        forms.c.project_id == project_id,
                        forms.c.xml_form_id == xml_form_id,
                        forms.c.deleted_at.is_(None),
                    )
                )
            ).scalar_one_or_none()
        return stored is not None and stored == hash_token(token)

    async def definition_xml(self, def_id: int) -> bytes | None:
        """The stored XForm of a definition, byte for byte (for services that read more of it)."""
        async with self._db.read() as conn:
            xml = (await conn.execute(select(form_defs.c.xml).where(form_defs.c.id == def_id))).scalar()
        return bytes(xml) if xml is not None else None

    async def forms_using_file(self, project_id: int, filename: str) -> list[dict[str, str]]:
        """Live forms whose published definition expects that data file with no file uploaded
        for it (so an entity list of that name serves it): `[{xmlFormId, name}]`."""
        stmt = (
            select(forms.c.xml_form_id, form_defs.c.name)
            .join(form_defs, form_defs.c.id == forms.c.current_def_id)
            .join(
                form_attachments,
                (form_attachments.c.form_def_id == form_defs.c.id) & (form_attachments.c.name == filename),
            )
            .where(
                forms.c.project_id == project_id,
                forms.c.deleted_at.is_(None),
                form_attachments.c.blob_sha256.is_(None),
            )
            .order_by(forms.c.xml_form_id)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [{"xmlFormId": r.xml_form_id, "name": r.name or r.xml_form_id} for r in rows]
