"""An entity list as files: `GET …/datasets/{name}/entities.csv` and the OpenRosa
`GET …/datasets/{name}/integrity` offline entities check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from odk_mcp.kernel.web import CurrentActor, RowId
from odk_mcp.services.entities.api.deps import DATASET, EntitiesApi

router = APIRouter(tags=["entities"])


@router.get(DATASET + "/entities.csv")
async def entities_csv(
    project_id: RowId,
    name: str,
    actor: CurrentActor,
    service: EntitiesApi,
    if_none_match: str | None = Header(default=None),
) -> Response:
    etag = await service.files.open_csv(actor, project_id, name)
    if if_none_match is not None and etag in {tag.strip().strip('"') for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": f'"{etag}"'})
    filename = quote(f"{name}.csv")
    return StreamingResponse(
        service.files.csv(project_id, f"{name}.csv"),
        media_type="text/csv; charset=utf-8",
        headers={"ETag": f'"{etag}"', "Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )


@router.get(DATASET + "/integrity")
async def integrity(
    project_id: RowId,
    name: str,
    actor: CurrentActor,
    service: EntitiesApi,
    ids: str | None = Query(default=None, alias="id"),
) -> Response:
    states = await service.files.integrity(actor, project_id, name, ids)

    async def body() -> AsyncIterator[bytes]:
        yield b'<?xml version="1.0" encoding="UTF-8"?>\n<data>\n  <entities>\n'
        for start in range(0, len(states), 5000):
            # UUIDs are canonical hex-and-dashes: nothing to escape.
            yield "".join(
                f'    <entity id="{uuid}">\n      <deleted>{"true" if deleted else "false"}</deleted>\n'
                "    </entity>\n"
                for uuid, deleted in states[start : start + 5000]
            ).encode()
        yield b"  </entities>\n</data>\n"

    return StreamingResponse(
        body(),
        media_type="text/xml; charset=utf-8",
    )
