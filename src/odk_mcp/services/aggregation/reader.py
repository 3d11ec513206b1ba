"""The read facade over the read model, for exports, analytics and the MCP server.

`ReadModel.form(...)` checks that the actor may list the form's submissions and answers the
form's schemas; `root_rows` / `repeat_rows` stream a form's rows in batches, oldest first
(`created_at, submission_id`, then document order within a submission), each batch from its
own short read (keyset paging: no long-lived transaction or cursor, constant memory), with an
optional OData `$filter` on the submissions (metadata and any field).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.domain.flatten import merged_fields
from odk_mcp.services.aggregation.odata.filters import compile_filter
from odk_mcp.services.aggregation.odata.scopes import root_scope
from odk_mcp.services.forms import Field, FormLookup, FormSchema, FormVersions


@dataclass(frozen=True)
class FormData:
    """A form whose data an actor may read: ids, its newest schema and every field its
    published versions ever had (in form order, for `deletedFields`)."""

    project_id: int
    xml_form_id: str
    form_id: int
    draft: bool
    schema: FormSchema | None
    all_fields: tuple[Field, ...]
    versions: FormVersions

    @property
    def fields(self) -> tuple[Field, ...]:
        """The newest definition's fields."""
        return self.schema.fields if self.schema is not None else ()

    def repeat_paths(self, fields: tuple[Field, ...] | None = None) -> list[str]:
        return [f.path for f in (fields if fields is not None else self.fields) if f.type == "repeat"]


class ReadModel:
    def __init__(self, db: Database, authorizer: Authorizer, lookup: FormLookup) -> None:
        self._db = db
        self._authz = authorizer
        self._lookup = lookup

    @property
    def db(self) -> Database:
        return self._db

    async def form(self, actor: Actor, project_id: int, xml_form_id: str, draft: bool) -> FormData:
        """The form's schemas, after checking `submission.list` on it (403.1 / 404.1)."""
        self._authz.require(actor, "submission.list", project_id, xml_form_id)
        versions = await self._lookup.versions(project_id, xml_form_id, draft)
        if versions is None or (draft and not versions.def_ids):
            raise Problem(problems.NOT_FOUND)
        return FormData(
            project_id=project_id,
            xml_form_id=xml_form_id,
            form_id=versions.form_id,
            draft=draft,
            schema=versions.current,
            all_fields=merged_fields(versions.schemas),
            versions=versions,
        )

    def submission_conditions(
        self, form: FormData, odata_filter: str | None = None, include_deleted: bool = False
    ) -> list[ColumnElement[bool]]:
        """WHERE conditions on `aggregation.rows` selecting a form's submissions."""
        conditions: list[ColumnElement[bool]] = [rows.c.form_id == form.form_id, rows.c.draft == form.draft]
        if not include_deleted:
            conditions.append(rows.c.deleted_at.is_(None))
        if odata_filter:
            conditions.append(compile_filter(odata_filter, root_scope(form.all_fields)))
        return conditions

    async def root_rows(
        self,
        form: FormData,
        odata_filter: str | None = None,
        include_deleted: bool = False,
        batch_size: int = 1000,
    ) -> AsyncIterator[list[RowMapping]]:
        """Batches of `aggregation.rows` of the form, oldest first."""
        conditions = self.submission_conditions(form, odata_filter, include_deleted)
        position: tuple[Any, ...] | None = None
        while True:
            stmt: Select[Any] = select(rows).where(*conditions)
            if position is not None:
                stmt = stmt.where(tuple_(rows.c.created_at, rows.c.submission_id) > tuple_(*position))
            stmt = stmt.order_by(rows.c.created_at, rows.c.submission_id).limit(batch_size)
            async with self._db.read() as conn:
                batch = list((await conn.execute(stmt)).mappings().all())
            if not batch:
                return
            yield batch
            last = batch[-1]
            position = (last["created_at"], last["submission_id"])
            if len(batch) < batch_size:
                return

    async def repeat_rows(
        self,
        form: FormData,
        repeat_path: str,
        odata_filter: str | None = None,
        include_deleted: bool = False,
        batch_size: int = 1000,
    ) -> AsyncIterator[list[RowMapping]]:
        """Batches of `aggregation.repeat_rows` of one repeat, in the order of their
        submissions (oldest first) then document order; the filter selects submissions."""
        conditions = self.submission_conditions(form, odata_filter, include_deleted)
        position: tuple[Any, ...] | None = None
        while True:
            stmt: Select[Any] = (
                select(repeat_rows, rows.c.created_at.label("submission_created_at"))
                .join(rows, rows.c.submission_id == repeat_rows.c.submission_id)
                .where(
                    *conditions,
                    repeat_rows.c.form_id == form.form_id,
                    repeat_rows.c.draft == form.draft,
                    repeat_rows.c.repeat_path == repeat_path,
                )
            )
            if position is not None:
                created_at, submission_id, seq = position
                stmt = stmt.where(
                    or_(
                        tuple_(rows.c.created_at, rows.c.submission_id) > tuple_(created_at, submission_id),
                        and_(
                            rows.c.created_at == created_at,
                            rows.c.submission_id == submission_id,
                            repeat_rows.c.seq > seq,
                        ),
                    )
                )
            stmt = stmt.order_by(rows.c.created_at, rows.c.submission_id, repeat_rows.c.seq).limit(batch_size)
            async with self._db.read() as conn:
                batch = list((await conn.execute(stmt)).mappings().all())
            if not batch:
                return
            yield batch
            last = batch[-1]
            position = (last["submission_created_at"], last["submission_id"], last["seq"])
            if len(batch) < batch_size:
                return
