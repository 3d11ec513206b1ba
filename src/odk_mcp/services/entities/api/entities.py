"""Entities: `/v1/projects/{p}/datasets/{name}/entities…` (create, bulk, read, update,
delete, restore, versions, diffs, audits)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import StreamingResponse

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, RowId, parse_bool, success
from odk_mcp.services.entities import UpdateOptions
from odk_mcp.services.entities.api.deps import DATASET, EntitiesApi

router = APIRouter(tags=["entities"])

ENTITIES = DATASET + "/entities"
ONE = ENTITIES + "/{uuid}"


@router.get(ENTITIES)
async def list_entities(
    project_id: RowId,
    name: str,
    actor: CurrentActor,
    service: EntitiesApi,
    deleted: str | None = Query(default=None),
) -> StreamingResponse:
    show_deleted = parse_bool("deleted", deleted, False)
    dataset_id = await service.entities.open_list(actor, project_id, name)

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        first = True
        async for entity in service.entities.stream_list(dataset_id, show_deleted):
            yield (b"" if first else b",") + json.dumps(entity).encode()
            first = False
        yield b"]"

    return StreamingResponse(body(), media_type="application/json")


@router.post(ENTITIES)
async def create_entities(
    project_id: RowId,
    name: str,
    request: Request,
    actor: CurrentActor,
    service: EntitiesApi,
    body: dict[str, Any] = Body(...),
) -> dict[str, Any]:
    return await service.entities.create(actor, project_id, name, body, request.headers.get("user-agent"))


@router.get(ONE)
async def get_entity(
    project_id: RowId, name: str, uuid: str, actor: CurrentActor, service: EntitiesApi
) -> dict[str, Any]:
    return await service.entities.get(actor, project_id, name, uuid)


def _base_version(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise Problem(
            problems.INVALID_DATA_TYPE, "baseVersion must be a whole number.", {"field": "baseVersion"}
        )
    return int(value)


@router.patch(ONE)
async def update_entity(
    project_id: RowId,
    name: str,
    uuid: str,
    request: Request,
    actor: CurrentActor,
    service: EntitiesApi,
    body: dict[str, Any] = Body(default_factory=dict),
    base_version: str | None = Query(default=None, alias="baseVersion"),
    force: str | None = Query(default=None),
    resolve: str | None = Query(default=None),
) -> dict[str, Any]:
    options = UpdateOptions(
        base_version=_base_version(base_version),
        force=parse_bool("force", force, False),
        resolve=parse_bool("resolve", resolve, False),
    )
    return await service.entities.update(
        actor, project_id, name, uuid, body, options, request.headers.get("user-agent")
    )


@router.delete(ONE)
async def delete_entity(
    project_id: RowId, name: str, uuid: str, actor: CurrentActor, service: EntitiesApi
) -> dict[str, bool]:
    await service.entities.delete(actor, project_id, name, uuid)
    return success()


@router.post(ONE + "/restore")
async def restore_entity(
    project_id: RowId, name: str, uuid: str, actor: CurrentActor, service: EntitiesApi
) -> dict[str, bool]:
    await service.entities.restore(actor, project_id, name, uuid)
    return success()


@router.get(ONE + "/versions")
async def entity_versions(
    project_id: RowId, name: str, uuid: str, actor: CurrentActor, service: EntitiesApi
) -> list[dict[str, Any]]:
    return await service.entities.versions(actor, project_id, name, uuid)


@router.get(ONE + "/diffs")
async def entity_diffs(
    project_id: RowId, name: str, uuid: str, actor: CurrentActor, service: EntitiesApi
) -> list[list[dict[str, Any]]]:
    return await service.entities.diffs(actor, project_id, name, uuid)


@router.get(ONE + "/audits")
async def entity_audits(
    project_id: RowId, name: str, uuid: str, actor: CurrentActor, service: EntitiesApi
) -> list[dict[str, Any]]:
    return await service.entities.audits(actor, project_id, name, uuid)
