"""The two writes every entity change is made of, shared by the REST API and the submission
consumer: a new entity with its first version, and a new version of an existing entity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.services.entities.adapters import store
from odk_mcp.services.entities.adapters.tables import entities, versions


@dataclass(frozen=True)
class Authorship:
    """Who made a version and from where: `source` is `{type: api|bulk|submission, details}`."""

    creator_id: int | None
    user_agent: str | None
    source: dict[str, Any]


@dataclass(frozen=True)
class Branch:
    """Offline-entity bookkeeping a submission carries (spec 2024.1)."""

    branch_id: str | None = None
    trunk_version: int | None = None
    branch_base_version: int | None = None


@dataclass(frozen=True)
class Change:
    label: str
    data: dict[str, str]  # the whole new data
    received: dict[str, str]  # what the change itself set (label included when it set it)
    base_version: int | None
    conflict: str | None = None  # the entity's conflict mark after this change
    version_conflict: str | None = None  # the conflict this version made
    conflicting: tuple[str, ...] | None = None
    branch: Branch = field(default_factory=Branch)


async def _version(
    conn: AsyncConnection, entity_id: int, number: int, change: Change, by: Authorship
) -> RowMapping:
    stmt = (
        insert(versions)
        .values(
            entity_id=entity_id,
            version=number,
            base_version=change.base_version,
            label=change.label,
            data=change.data,
            data_received=change.received,
            conflicting_properties=list(change.conflicting) if change.conflicting else None,
            conflict=change.version_conflict,
            resolved=False,
            creator_id=by.creator_id,
            user_agent=by.user_agent,
            source=by.source,
            branch_id=change.branch.branch_id,
            trunk_version=change.branch.trunk_version,
            branch_base_version=change.branch.branch_base_version,
            created_at=func.now(),
        )
        .returning(versions)
    )
    row: RowMapping = (await conn.execute(stmt)).mappings().one()
    return row


async def create_entity(
    conn: AsyncConnection, dataset_id: int, uuid: str, change: Change, by: Authorship
) -> tuple[RowMapping, RowMapping]:
    """Insert an entity at version 1 (the caller has checked the UUID is free)."""
    stmt = (
        insert(entities)
        .values(
            dataset_id=dataset_id,
            uuid=uuid,
            label=change.label,
            data=change.data,
            version=1,
            creator_id=by.creator_id,
            created_at=func.now(),
        )
        .returning(entities)
    )
    entity: RowMapping = (await conn.execute(stmt)).mappings().one()
    version = await _version(conn, entity["id"], 1, change, by)
    await store.bump(conn, dataset_id, live_delta=1)
    return entity, version


async def add_version(
    conn: AsyncConnection, entity: RowMapping, change: Change, by: Authorship
) -> tuple[RowMapping, RowMapping]:
    """The next version of a (locked) entity; its row takes the new label, data and mark."""
    number = entity["version"] + 1
    stmt = (
        update(entities)
        .where(entities.c.id == entity["id"])
        .values(
            label=change.label,
            data=change.data,
            version=number,
            conflict=change.conflict,
            updated_at=func.now(),
        )
        .returning(entities)
    )
    updated: RowMapping = (await conn.execute(stmt)).mappings().one()
    version = await _version(conn, entity["id"], number, change, by)
    await store.bump(conn, entity["dataset_id"])
    return updated, version
