"""Entity lists as files: the CSV ODK Collect downloads (`name,label,__version,<properties>`)
and the integrity document offline entities check.

The CSV is PostgreSQL's own `COPY … TO STDOUT (FORMAT csv)` streamed straight to the client
through `kernel.copy_out`, so a download runs at COPY speed in constant memory. Property names
go into the statement only as quoted identifiers and literals (psycopg's `sql` composition),
never as raw text.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence

from psycopg import sql
from sqlalchemy import select

from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.copy_out import copy_out
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.adapters import store
from odk_mcp.services.entities.adapters.tables import datasets, entities
from odk_mcp.services.entities.domain.payloads import parse_uuid
from odk_mcp.services.forms import FormLookup, LinkedDataset

MAX_INTEGRITY_IDS = 100_000


def list_hash(dataset_id: int, revision: int, owner: int | None = None) -> str:
    """Changes whenever the list's entities or properties change (manifest hash, ETag); the
    part of an owner-only list one collector receives has a hash of its own."""
    key = f"entity-list:{dataset_id}:{revision}" + (f":owner:{owner}" if owner is not None else "")
    return hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()


def _copy_statement(dataset_id: int, property_names: Sequence[str], owner: int | None = None) -> sql.Composed:
    columns = [
        sql.SQL("uuid AS name"),
        sql.SQL("label"),
        sql.SQL('version AS "__version"'),
        *(
            sql.SQL("data ->> {} AS {}").format(sql.Literal(name), sql.Identifier(name))
            for name in property_names
        ),
    ]
    mine = sql.SQL(" AND creator_id = {}").format(sql.Literal(owner)) if owner is not None else sql.SQL("")
    return sql.SQL(
        "COPY (SELECT {} FROM entities.entities WHERE dataset_id = {} AND deleted_at IS NULL{} ORDER BY id)"
        " TO STDOUT (FORMAT csv, HEADER true)"
    ).format(sql.SQL(", ").join(columns), sql.Literal(dataset_id), mine)


class DatasetFiles:
    """Implements the forms service's `DatasetAttachments` port, and serves CSV and integrity."""

    def __init__(self, db: Database, authorizer: Authorizer, lookup: FormLookup) -> None:
        self._db = db
        self._authz = authorizer
        self._lookup = lookup

    def _owner(self, actor: Actor | None, project_id: int, owner_only: bool) -> int | None:
        """Whose entities alone `actor` receives: on an owner-only list, an actor who gets
        entities only through forms (data collectors, app users, public links) receives the
        ones they created; holders of `entity.list` (managers, viewers) and draft-test tokens
        (no actor) receive the whole list."""
        if actor is None or not owner_only or self._authz.can(actor, "entity.list", project_id):
            return None
        return actor.id

    async def linked(
        self, project_id: int, filenames: Sequence[str], actor: Actor | None = None
    ) -> dict[str, LinkedDataset]:
        names = {f.removesuffix(".csv"): f for f in filenames if f.endswith(".csv")}
        if not names:
            return {}
        stmt = select(datasets.c.id, datasets.c.name, datasets.c.revision, datasets.c.owner_only).where(
            datasets.c.project_id == project_id, datasets.c.name.in_(list(names))
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return {
            names[r.name]: LinkedDataset(
                filename=names[r.name],
                md5=list_hash(r.id, r.revision, self._owner(actor, project_id, r.owner_only)),
            )
            for r in rows
        }

    async def csv(self, project_id: int, filename: str, actor: Actor | None = None) -> AsyncIterator[bytes]:
        async with self._db.read() as conn:
            dataset = await store.dataset(conn, project_id, filename.removesuffix(".csv"))
            owner = self._owner(actor, project_id, dataset["owner_only"])
            statement = _copy_statement(dataset["id"], await store.property_names(conn, dataset["id"]), owner)
        async for chunk, _ in copy_out(self._db.url, statement):
            yield chunk

    async def open_csv(self, actor: Actor, project_id: int, name: str) -> str:
        """Authorize a REST CSV download (`entity.list`); the list's ETag."""
        self._authz.require(actor, "entity.list", project_id)
        async with self._db.read() as conn:
            dataset = await store.dataset(conn, project_id, name)
        return list_hash(dataset["id"], dataset["revision"])

    async def _may_check(self, actor: Actor, project_id: int, name: str) -> None:
        """`entity.list`, or read access to a form that uses the list as its attachment."""
        if self._authz.can(actor, "entity.list", project_id):
            return
        for form in await self._lookup.forms_using_file(project_id, f"{name}.csv"):
            xml_form_id = form["xmlFormId"]
            if self._authz.can(actor, "form.read", project_id, xml_form_id) or self._authz.can(
                actor, "open_form.read", project_id, xml_form_id
            ):
                return
        self._authz.require(actor, "entity.list", project_id)

    async def integrity(
        self, actor: Actor, project_id: int, name: str, ids: str | None
    ) -> list[tuple[str, bool]]:
        """(uuid, deleted) of the entities asked for (all of the list's when no ids are given)."""
        await self._may_check(actor, project_id, name)
        async with self._db.read() as conn:
            dataset = await store.dataset(conn, project_id, name)
            stmt = select(entities.c.uuid, entities.c.deleted_at).where(
                entities.c.dataset_id == dataset["id"]
            )
            owner = self._owner(actor, project_id, dataset["owner_only"])
            if owner is not None:
                stmt = stmt.where(entities.c.creator_id == owner)
            if ids is not None and ids.strip():
                wanted = [part.strip() for part in ids.split(",") if part.strip()]
                if len(wanted) > MAX_INTEGRITY_IDS:
                    raise Problem(problems.VALUE_TOO_LONG, details={"field": "id", "max": MAX_INTEGRITY_IDS})
                clean = []
                for value in wanted:
                    try:
                        clean.append(parse_uuid(value))
                    except Problem:
                        continue  # not a UUID: names no entity
                stmt = stmt.where(entities.c.uuid.in_(clean))
            rows = (await conn.execute(stmt.order_by(entities.c.id))).all()
        return [(str(r.uuid), r.deleted_at is not None) for r in rows]
