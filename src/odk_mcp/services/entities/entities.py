"""Entities of a list through the REST API: create (one or in bulk), read, update, delete,
restore, and their history (versions, diffs, audit trail).

Every change is one transaction that writes the entity row (current label, data, version),
a version row (history), an audit row and an event, and bumps the list's revision.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import emit, record_audit
from odk_mcp.events.audit import audits_for
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.adapters import store
from odk_mcp.services.entities.adapters.tables import entities, versions
from odk_mcp.services.entities.adapters.writes import Authorship, Change, add_version, create_entity
from odk_mcp.services.entities.domain import payloads
from odk_mcp.services.entities.domain.versions import diffs
from odk_mcp.services.entities.ports import ProjectDirectory
from odk_mcp.services.entities.views import entity_json, version_json

LIST_BATCH = 5000

_BULK_INSERT = text(
    """
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(uuid uuid, label text, data jsonb)
    ), created AS (
        INSERT INTO entities.entities (dataset_id, uuid, label, data, version, creator_id, created_at)
        SELECT :dataset_id, uuid, label, data, 1, :creator_id, now() FROM input
        ON CONFLICT (uuid) DO NOTHING
        RETURNING id, label, data
    )
    INSERT INTO entities.versions
        (entity_id, version, label, data, data_received, resolved, creator_id, user_agent, source, created_at)
    SELECT id, 1, label, data, data, false, :creator_id, :user_agent, CAST(:source AS jsonb), now()
    FROM created
    """
)


@dataclass(frozen=True)
class UpdateOptions:
    base_version: int | None
    force: bool
    resolve: bool


def _actor_id(actor: Actor) -> int | None:
    return actor.id if actor.id > 0 else None


class Entities:
    def __init__(self, db: Database, authorizer: Authorizer, projects: ProjectDirectory) -> None:
        self._db = db
        self._authz = authorizer
        self._projects = projects

    async def _authorize(self, actor: Actor, verb: str, project_id: int) -> None:
        self._authz.require(actor, verb, project_id)
        if not await self._projects.project_exists(project_id):
            raise Problem(problems.NOT_FOUND)

    async def _taken(self, conn: AsyncConnection, uuids: list[str]) -> None:
        """409 for UUIDs already used (409.19 when only by deleted entities, as in Central)."""
        stmt = select(entities.c.uuid, entities.c.deleted_at).where(entities.c.uuid.in_(uuids))
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return
        live = sorted(str(r.uuid) for r in rows if r.deleted_at is None)
        if live:
            raise Problem(
                problems.UNIQUENESS_VIOLATION,
                f"An entity already exists with the UUID(s) {', '.join(live[:10])}.",
                {"fields": ["uuid"], "values": live[:100]},
            )
        deleted = sorted(str(r.uuid) for r in rows)
        raise Problem(problems.ENTITY_UUID_DELETED, details={"entityUuids": deleted[:100]})

    # -- creation -------------------------------------------------------------------------
    async def create(
        self, actor: Actor, project_id: int, name: str, body: dict[str, Any], user_agent: str | None
    ) -> dict[str, Any]:
        """One entity (`{uuid?, label, data}`) or many (`{entities, source}` → success)."""
        await self._authorize(actor, "entity.create", project_id)
        if "entities" in body or "source" in body:
            await self._create_many(actor, project_id, name, body, user_agent)
            return {"success": True}
        async with self._db.transaction() as conn:
            dataset = await store.dataset(conn, project_id, name, lock=True)
            new = payloads.new_entity(body, await store.property_names(conn, dataset["id"]))
            await self._taken(conn, [new.uuid])
            entity, version = await create_entity(
                conn,
                dataset["id"],
                new.uuid,
                Change(label=new.label, data=new.data, received=new.data, base_version=None),
                Authorship(_actor_id(actor), user_agent, {"type": "api"}),
            )
            await record_audit(
                conn,
                actor,
                "entity.create",
                "entity",
                new.uuid,
                project_id=project_id,
                details={"dataset": name, "version": 1, "source": {"type": "api"}},
            )
            await emit(conn, "entity.created", _event(project_id, dataset, new.uuid, 1))
            return entity_json(entity, version)

    async def _create_many(
        self, actor: Actor, project_id: int, name: str, body: dict[str, Any], user_agent: str | None
    ) -> None:
        async with self._db.transaction() as conn:
            dataset = await store.dataset(conn, project_id, name, lock=True)
            rows, source = payloads.bulk(body, await store.property_names(conn, dataset["id"]))
            await self._taken(conn, [r.uuid for r in rows])
            source_json = {"type": "bulk", "details": {"name": source.name, "size": source.size}}
            result = await conn.execute(
                _BULK_INSERT,
                {
                    "rows": json.dumps([{"uuid": r.uuid, "label": r.label, "data": r.data} for r in rows]),
                    "dataset_id": dataset["id"],
                    "creator_id": _actor_id(actor),
                    "user_agent": user_agent,
                    "source": json.dumps(source_json),
                },
            )
            if result.rowcount != len(rows):
                # A UUID was taken by a concurrent request after the check: nothing is kept.
                raise Problem(problems.UNIQUENESS_VIOLATION, "Some entity UUIDs were taken meanwhile.")
            await store.bump(conn, dataset["id"], live_delta=len(rows))
            await record_audit(
                conn,
                actor,
                "entity.bulk.create",
                "dataset",
                name,
                project_id=project_id,
                details={"count": len(rows), "source": source_json["details"]},
            )
            await emit(
                conn,
                "entity.bulk.created",
                {
                    "projectId": project_id,
                    "dataset": name,
                    "datasetId": dataset["id"],
                    "count": len(rows),
                    "source": source_json["details"],
                },
            )

    # -- reading --------------------------------------------------------------------------
    async def open_list(self, actor: Actor, project_id: int, name: str) -> int:
        """Authorize a listing and find its list (before any byte of the answer is sent)."""
        await self._authorize(actor, "entity.list", project_id)
        async with self._db.read() as conn:
            return int((await store.dataset(conn, project_id, name))["id"])

    async def stream_list(self, dataset_id: int, deleted: bool) -> AsyncIterator[dict[str, Any]]:
        """Entities of a list, oldest first, without their data (Central's listing), in batches."""
        after = 0
        while True:
            stmt = (
                store.entity_with_version()
                .where(
                    entities.c.dataset_id == dataset_id,
                    entities.c.id > after,
                    entities.c.deleted_at.is_not(None) if deleted else entities.c.deleted_at.is_(None),
                )
                .order_by(entities.c.id)
                .limit(LIST_BATCH)
            )
            async with self._db.read() as conn:
                rows = (await conn.execute(stmt)).mappings().all()
            for row in rows:
                yield entity_json(row, store.version_part(row), with_data=False)
            if len(rows) < LIST_BATCH:
                return
            after = rows[-1]["id"]

    async def get(self, actor: Actor, project_id: int, name: str, uuid: str) -> dict[str, Any]:
        await self._authorize(actor, "entity.read", project_id)
        async with self._db.read() as conn:
            dataset = await store.dataset(conn, project_id, name)
            entity = await store.entity(conn, dataset["id"], _uuid_or_404(uuid))
            return entity_json(entity, await store.current_version(conn, entity["id"], entity["version"]))

    async def _history(self, actor: Actor, project_id: int, name: str, uuid: str) -> list[dict[str, Any]]:
        await self._authorize(actor, "entity.read", project_id)
        async with self._db.read() as conn:
            dataset = await store.dataset(conn, project_id, name)
            entity = await store.entity(conn, dataset["id"], _uuid_or_404(uuid))
            stmt = select(versions).where(versions.c.entity_id == entity["id"]).order_by(versions.c.version)
            rows = list((await conn.execute(stmt)).mappings().all())
        return [{**r, "current_version": entity["version"]} for r in rows]

    async def versions(self, actor: Actor, project_id: int, name: str, uuid: str) -> list[dict[str, Any]]:
        """Every version, oldest first, with its data, what was received, source and conflict."""
        out = []
        for row in await self._history(actor, project_id, name, uuid):
            item = version_json(row, row["version"] == row["current_version"])
            item.update(source=row["source"], conflict=row["conflict"], resolved=row["resolved"])
            out.append(item)
        return out

    async def diffs(self, actor: Actor, project_id: int, name: str, uuid: str) -> list[list[dict[str, Any]]]:
        rows = await self._history(actor, project_id, name, uuid)
        return diffs([{"label": r["label"], **r["data"]} for r in rows])

    async def audits(self, actor: Actor, project_id: int, name: str, uuid: str) -> list[dict[str, Any]]:
        """The audit trail of one entity, newest first."""
        await self._authorize(actor, "entity.read", project_id)
        async with self._db.read() as conn:
            dataset = await store.dataset(conn, project_id, name)
            clean = _uuid_or_404(uuid)
            found = (
                await conn.execute(
                    select(entities.c.id).where(
                        entities.c.dataset_id == dataset["id"], entities.c.uuid == clean
                    )
                )
            ).first()
            if found is None:
                raise Problem(problems.NOT_FOUND)
            return [entry.to_json() for entry in await audits_for(conn, "entity", clean)]

    # -- changes --------------------------------------------------------------------------
    async def update(
        self,
        actor: Actor,
        project_id: int,
        name: str,
        uuid: str,
        body: dict[str, Any],
        options: UpdateOptions,
        user_agent: str | None,
    ) -> dict[str, Any]:
        """PATCH: a new version (or, with ?resolve=true and no changes, only the conflict cleared)."""
        await self._authorize(actor, "entity.update", project_id)
        async with self._db.transaction() as conn:
            dataset = await store.dataset(conn, project_id, name)
            change = payloads.entity_change(body, await store.property_names(conn, dataset["id"]))
            changing = change.label is not None or bool(change.data)
            if options.base_version is None and not options.force and (changing or not options.resolve):
                raise Problem(
                    problems.MISSING_PARAMETER,
                    "Required parameter baseVersion missing: pass ?baseVersion=N or ?force=true.",
                    {"field": "baseVersion"},
                )
            entity = await store.entity(conn, dataset["id"], _uuid_or_404(uuid), lock=True)
            if (
                not options.force
                and options.base_version is not None
                and options.base_version != entity["version"]
            ):
                raise Problem(
                    problems.ENTITY_VERSION_CONFLICT,
                    f"Current version of the Entity is '{entity['version']}' and you provided"
                    f" '{options.base_version}'. Please correct the version number or pass"
                    " '?force=true' in the URL to forcefully update the Entity.",
                    {"current": entity["version"], "provided": options.base_version},
                )
            if options.resolve and entity["conflict"] is None:
                raise Problem(problems.NO_CONFLICT_ENTITY)
            if not changing:
                return await self._resolve_only(conn, actor, project_id, dataset, entity)
            label = change.label if change.label is not None else entity["label"]
            data = {**entity["data"], **change.data}
            received = dict(change.data, **({"label": change.label} if change.label is not None else {}))
            change_made = Change(
                label=label,
                data=data,
                received=received,
                base_version=entity["version"],
                conflict=None if options.resolve else entity["conflict"],
            )
            updated, version = await add_version(
                conn, entity, change_made, Authorship(_actor_id(actor), user_agent, {"type": "api"})
            )
            number = updated["version"]
            await record_audit(
                conn,
                actor,
                "entity.update.version",
                "entity",
                updated["uuid"],
                project_id=project_id,
                details={
                    "dataset": name,
                    "version": number,
                    "baseVersion": entity["version"],
                    "resolved": options.resolve,
                    "source": {"type": "api"},
                },
            )
            await emit(conn, "entity.updated", _event(project_id, dataset, updated["uuid"], number))
            return entity_json(updated, version)

    async def _resolve_only(
        self, conn: AsyncConnection, actor: Actor, project_id: int, dataset: RowMapping, entity: RowMapping
    ) -> dict[str, Any]:
        updated = (
            (
                await conn.execute(
                    update(entities)
                    .where(entities.c.id == entity["id"])
                    .values(conflict=None, updated_at=func.now())
                    .returning(entities)
                )
            )
            .mappings()
            .one()
        )
        await conn.execute(
            update(versions)
            .where(versions.c.entity_id == entity["id"], versions.c.conflict.is_not(None))
            .values(resolved=True)
        )
        await record_audit(
            conn,
            actor,
            "entity.update.resolve",
            "entity",
            entity["uuid"],
            project_id=project_id,
            details={"dataset": dataset["name"], "version": entity["version"]},
        )
        await emit(conn, "entity.resolved", _event(project_id, dataset, entity["uuid"], entity["version"]))
        return entity_json(updated, await store.current_version(conn, entity["id"], entity["version"]))

    async def delete(self, actor: Actor, project_id: int, name: str, uuid: str) -> None:
        await self._set_deleted(actor, project_id, name, uuid, deleted=True)

    async def restore(self, actor: Actor, project_id: int, name: str, uuid: str) -> None:
        await self._set_deleted(actor, project_id, name, uuid, deleted=False)

    async def _set_deleted(self, actor: Actor, project_id: int, name: str, uuid: str, deleted: bool) -> None:
        action = "entity.delete" if deleted else "entity.restore"
        await self._authorize(actor, action, project_id)
        async with self._db.transaction() as conn:
            dataset = await store.dataset(conn, project_id, name)
            entity = await store.entity(
                conn, dataset["id"], _uuid_or_404(uuid), deleted=not deleted, lock=True
            )
            await conn.execute(
                update(entities)
                .where(entities.c.id == entity["id"])
                .values(deleted_at=func.now() if deleted else None)
            )
            await store.bump(conn, dataset["id"], live_delta=-1 if deleted else 1)
            await record_audit(
                conn,
                actor,
                action,
                "entity",
                entity["uuid"],
                project_id=project_id,
                details={"dataset": name},
            )
            await emit(
                conn,
                "entity.deleted" if deleted else "entity.restored",
                _event(project_id, dataset, entity["uuid"], entity["version"]),
            )


def _uuid_or_404(value: str) -> str:
    """A path UUID in canonical form; anything else names no entity."""
    try:
        return payloads.parse_uuid(value)
    except Problem as exc:
        raise Problem(problems.NOT_FOUND) from exc


def _event(project_id: int, dataset: RowMapping, uuid: str, version: int) -> dict[str, Any]:
    return {
        "projectId": project_id,
        "dataset": dataset["name"],
        "datasetId": dataset["id"],
        "uuid": str(uuid),
        "version": version,
    }
