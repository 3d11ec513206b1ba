"""Entity lists: `/v1/projects/{p}/datasets…` (names, approval, properties)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, RowId, extended, parse_bool, success
from odk_mcp.services.entities.api.deps import DATASET, EntitiesApi

router = APIRouter(tags=["entities"])


def _bool_field(body: dict[str, Any], field: str) -> bool | None:
    value = body.get(field)
    if value is None or isinstance(value, bool):
        return value
    raise Problem(problems.INVALID_DATA_TYPE, f"{field} must be true or false.", {"field": field})


@router.get("/v1/projects/{project_id}/datasets")
async def list_datasets(
    project_id: RowId, request: Request, actor: CurrentActor, service: EntitiesApi
) -> list[dict[str, Any]]:
    return await service.datasets.list_datasets(actor, project_id, extended(request))


@router.post("/v1/projects/{project_id}/datasets")
async def create_dataset(
    project_id: RowId, actor: CurrentActor, service: EntitiesApi, body: dict[str, Any] = Body(...)
) -> dict[str, Any]:
    props = body.get("properties") or []
    if not isinstance(props, list):
        raise Problem(
            problems.INVALID_DATA_TYPE, "properties must be a list of names.", {"field": "properties"}
        )
    detail = await service.datasets.create(
        actor, project_id, body.get("name"), bool(_bool_field(body, "approvalRequired")), props
    )
    return detail.to_json()


@router.get(DATASET)
async def get_dataset(
    project_id: RowId, name: str, actor: CurrentActor, service: EntitiesApi
) -> dict[str, Any]:
    return (await service.datasets.get(actor, project_id, name)).to_json()


@router.patch(DATASET)
async def update_dataset(
    project_id: RowId,
    name: str,
    actor: CurrentActor,
    service: EntitiesApi,
    body: dict[str, Any] = Body(...),
    convert: str | None = Query(default=None),
) -> dict[str, Any]:
    detail = await service.datasets.update(
        actor,
        project_id,
        name,
        _bool_field(body, "approvalRequired"),
        parse_bool("convert", convert, False) if convert is not None else None,
        _bool_field(body, "ownerOnly"),
    )
    return detail.to_json()


@router.post(DATASET + "/properties")
async def add_property(
    project_id: RowId, name: str, actor: CurrentActor, service: EntitiesApi, body: dict[str, Any] = Body(...)
) -> dict[str, bool]:
    await service.datasets.add_property(actor, project_id, name, body.get("name"))
    return success()
