"""The OData facade of entity lists: service document, $metadata, and the Entities feed
streamed as JSON (rows are rendered as they come from a server-side cursor)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.adapters.tables import datasets, properties
from odk_mcp.services.entities.odata.columns import Columns
from odk_mcp.services.entities.odata.metadata import edmx
from odk_mcp.services.entities.odata.query import Page, count_query, encode_token, parse_page, rows_query
from odk_mcp.services.entities.ports import ActorDirectory, ProjectDirectory

STREAM_BATCH = 2000


@dataclass(frozen=True)
class FeedRequest:
    """An Entities request: its query options (raw), and the URL the next link is built on."""

    params: dict[str, str]
    service_root: str  # absolute URL of `…/datasets/{name}.svc`


def service_root(public_url: str, project_id: int, name: str) -> str:
    return f"{public_url.rstrip('/')}/v1/projects/{project_id}/datasets/{quote(name, safe='')}.svc"


def row_json(
    row: RowMapping, columns: Columns, selected: frozenset[str] | None, names: dict[int, str]
) -> dict[str, Any]:
    def wanted(name: str) -> bool:
        return selected is None or name in selected

    out: dict[str, Any] = {}
    if wanted("__id"):
        out["__id"] = str(row["uuid"])
    if wanted("label"):
        out["label"] = row["label"]
    system = {
        "createdAt": iso(row["created_at"]),
        "creatorId": str(row["creator_id"]) if row["creator_id"] is not None else None,
        "creatorName": names.get(row["creator_id"]),
        "updates": row["version"] - 1,
        "updatedAt": iso(row["updated_at"]),
        "version": row["version"],
        "conflict": row["conflict"],
    }
    if wanted("__system"):
        out["__system"] = system
    elif selected is not None:
        picked = {k: v for k, v in system.items() if f"__system/{k}" in selected}
        if picked:
            out["__system"] = picked
    data = row["data"]
    for odata_name, name in columns.properties.items():
        if wanted(odata_name):
            out[odata_name] = data.get(name, "")
    return out


@dataclass(frozen=True)
class _List:
    id: int
    columns: Columns
    live_entities: int


async def _list_columns(conn: AsyncConnection, project_id: int, name: str) -> _List:
    """The list's id, fields and live count, in one query (404.1 when there is no such list)."""
    names = (
        select(func.array_agg(aggregate_order_by(properties.c.name, properties.c.id)))
        .where(properties.c.dataset_id == datasets.c.id)
        .scalar_subquery()
    )
    stmt = select(datasets.c.id, names, datasets.c.live_entities).where(
        datasets.c.project_id == project_id, datasets.c.name == name
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise Problem(problems.NOT_FOUND)
    return _List(int(row[0]), Columns.of(list(row[1] or ())), int(row[2]))


class EntityFeed:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        projects: ProjectDirectory,
        names: ActorDirectory,
        public_url: str,
    ) -> None:
        self._db = db
        self._names = names
        self._authz = authorizer
        self._projects = projects
        self.public_url = public_url

    async def _authorize(self, actor: Actor, project_id: int) -> None:
        self._authz.require(actor, "entity.list", project_id)
        if not await self._projects.project_exists(project_id):
            raise Problem(problems.NOT_FOUND)

    async def _columns(self, actor: Actor, project_id: int, name: str) -> Columns:
        await self._authorize(actor, project_id)
        async with self._db.read() as conn:
            return (await _list_columns(conn, project_id, name)).columns

    async def service_document(self, actor: Actor, project_id: int, name: str) -> dict[str, Any]:
        await self._columns(actor, project_id, name)
        root = service_root(self.public_url, project_id, name)
        return {
            "@odata.context": f"{root}/$metadata",
            "value": [{"name": "Entities", "kind": "EntitySet", "url": "Entities"}],
        }

    async def metadata(self, actor: Actor, project_id: int, name: str) -> bytes:
        columns = await self._columns(actor, project_id, name)
        return edmx(name, list(columns.properties))

    async def entities(
        self, actor: Actor, project_id: int, name: str, request: FeedRequest
    ) -> AsyncIterator[bytes]:
        """Check everything (rights, options, the query itself) before the first byte, then stream."""
        await self._authorize(actor, project_id)
        total = None
        try:
            async with self._db.read() as conn:
                # One connection for the list, its properties, the count and the page.
                found = await _list_columns(conn, project_id, name)
                dataset_id, columns = found.id, found.columns
                page = parse_page(request.params, columns)
                if page.count and page.condition is None:
                    total = found.live_entities  # kept exact by every change
                elif page.count:
                    total = int((await conn.execute(count_query(dataset_id, page))).scalar_one())
                if page.top is not None:
                    rows = list((await conn.execute(rows_query(dataset_id, page))).mappings().all())
                    return self._page(page, columns, rows, total, request)
                if page.condition is not None:
                    # Plan the filter once before streaming: type errors surface as a 400 now.
                    await conn.execute(rows_query(dataset_id, page).limit(0))
        except DBAPIError as exc:
            raise Problem(
                problems.UNPARSEABLE_ODATA_EXPRESSION,
                "The OData filter expression you provided compares values of incompatible types.",
                {"reason": type(getattr(exc, "orig", exc)).__name__},
            ) from exc
        return self._stream(dataset_id, page, columns, total, request)

    async def _creator_names(self, rows: Sequence[RowMapping]) -> dict[int, str]:
        return await self._names.display_names({r["creator_id"] for r in rows if r["creator_id"] is not None})

    def _head(self, request: FeedRequest, total: int | None) -> bytes:
        head = '{"@odata.context":' + json.dumps(f"{request.service_root}/$metadata#Entities")
        if total is not None:
            head += f',"@odata.count":{total}'
        return (head + ',"value":[').encode()

    async def _page(
        self, page: Page, columns: Columns, rows: list[RowMapping], total: int | None, request: FeedRequest
    ) -> AsyncIterator[bytes]:
        assert page.top is not None
        more = len(rows) > page.top
        rows = rows[: page.top]
        body = [self._head(request, total)]
        names = await self._creator_names(rows)
        body.append(",".join(json.dumps(row_json(r, columns, page.selected, names)) for r in rows).encode())
        tail = "]"
        if more and rows:
            token = (
                {"id": rows[-1]["id"]}
                if page.default_order
                else {"o": page.offset_token + page.skip + page.top}
            )
            params = {k: v for k, v in request.params.items() if k not in ("$skip", "$skiptoken")}
            params["$skiptoken"] = encode_token(token)
            tail += ',"@odata.nextLink":' + json.dumps(f"{request.service_root}/Entities?{urlencode(params)}")
        body.append((tail + "}").encode())
        yield b"".join(body)

    async def _stream(
        self, dataset_id: int, page: Page, columns: Columns, total: int | None, request: FeedRequest
    ) -> AsyncIterator[bytes]:
        yield self._head(request, total)
        first = True
        async with self._db.read() as conn:
            result = await conn.stream(rows_query(dataset_id, page).execution_options(yield_per=STREAM_BATCH))
            async for batch in result.mappings().partitions(STREAM_BATCH):
                names = await self._creator_names(batch)
                text = ",".join(json.dumps(row_json(r, columns, page.selected, names)) for r in batch)
                yield ((text if first else "," + text) if text else "").encode()
                first = False
        yield b"]}"
