"""Queries of the entities schema shared by the facades."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.adapters.tables import datasets, entities, properties, versions


async def dataset(conn: AsyncConnection, project_id: int, name: str, lock: bool = False) -> RowMapping:
    """The list with exactly that name in the project (404.1 when there is none)."""
    stmt = select(datasets).where(datasets.c.project_id == project_id, datasets.c.name == name)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise Problem(problems.NOT_FOUND)
    return row


async def property_names(conn: AsyncConnection, dataset_id: int) -> list[str]:
    stmt = select(properties.c.name).where(properties.c.dataset_id == dataset_id).order_by(properties.c.id)
    return list((await conn.execute(stmt)).scalars().all())


async def bump(conn: AsyncConnection, dataset_id: int, live_delta: int = 0) -> None:
    """A list's entities or properties changed: its manifest hash and CSV ETag change too.
    `live_delta` keeps the count of live entities (OData's unfiltered `$count`) exact."""
    await conn.execute(
        update(datasets)
        .where(datasets.c.id == dataset_id)
        .values(revision=datasets.c.revision + 1, live_entities=datasets.c.live_entities + live_delta)
    )


def entity_with_version() -> Any:
    """Entity rows joined to their current version, columns of both (version ones prefixed v_)."""
    v = versions
    return select(
        entities,
        v.c.id.label("v_id"),
        v.c.label.label("v_label"),
        v.c.data.label("v_data"),
        v.c.data_received.label("v_data_received"),
        v.c.version.label("v_version"),
        v.c.base_version.label("v_base_version"),
        v.c.conflicting_properties.label("v_conflicting_properties"),
        v.c.creator_id.label("v_creator_id"),
        v.c.user_agent.label("v_user_agent"),
        v.c.created_at.label("v_created_at"),
        v.c.branch_id.label("v_branch_id"),
        v.c.trunk_version.label("v_trunk_version"),
        v.c.branch_base_version.label("v_branch_base_version"),
    ).join(v, and_(v.c.entity_id == entities.c.id, v.c.version == entities.c.version))


def version_part(row: RowMapping) -> dict[str, Any]:
    """The current-version columns of an `entity_with_version` row, unprefixed."""
    return {key[2:]: row[key] for key in row if key.startswith("v_")}


async def entity(
    conn: AsyncConnection, dataset_id: int, uuid: str, deleted: bool = False, lock: bool = False
) -> RowMapping:
    stmt = select(entities).where(entities.c.dataset_id == dataset_id, entities.c.uuid == uuid)
    stmt = stmt.where(entities.c.deleted_at.is_not(None) if deleted else entities.c.deleted_at.is_(None))
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise Problem(problems.NOT_FOUND)
    return row


async def current_version(conn: AsyncConnection, entity_id: int, version: int) -> RowMapping:
    stmt = select(versions).where(versions.c.entity_id == entity_id, versions.c.version == version)
    return (await conn.execute(stmt)).mappings().one()
