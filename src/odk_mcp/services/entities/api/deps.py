"""FastAPI dependencies of the entities routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

if TYPE_CHECKING:
    from odk_mcp.services.entities import EntitiesService


def get_entities(request: Request) -> EntitiesService:
    return cast("EntitiesService", request.app.state.entities)


EntitiesApi = Annotated["EntitiesService", Depends(get_entities)]

DATASET = "/v1/projects/{project_id}/datasets/{name}"
