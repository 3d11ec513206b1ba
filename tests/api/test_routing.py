"""The gateway lists every service route itself (gateway/app.py `_flat`): the same routes, in
the same order, with the same tags as including the services' routers gave."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.routing import Match

from odk_mcp.gateway import create_app
from odk_mcp.gateway.app import _flat
from odk_mcp.settings import Settings


def _app_routes(tmp_path_factory: pytest.TempPathFactory) -> list[APIRoute]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("routing")))
    return [r for r in app.router.routes if isinstance(r, APIRoute)]


def test_flattening_keeps_order_and_refuses_what_it_cannot_keep() -> None:
    inner, outer = APIRouter(tags=["inner"]), APIRouter()

    @inner.get("/a")
    async def a() -> None: ...

    @outer.get("/b")
    async def b() -> None: ...

    outer.include_router(inner)

    @outer.get("/c")
    async def c() -> None: ...

    assert [getattr(r, "path", None) for r in _flat(outer)] == ["/b", "/a", "/c"]
    prefixed = APIRouter()
    prefixed.include_router(inner, prefix="/v2")
    with pytest.raises(ValueError, match="prefix"):
        list(_flat(prefixed))
    tagged = APIRouter(tags=["outer"])
    tagged.include_router(inner)
    with pytest.raises(ValueError, match="tags"):
        list(_flat(tagged))


def test_every_route_is_listed_once_and_matches_as_before(tmp_path_factory: pytest.TempPathFactory) -> None:
    routes = _app_routes(tmp_path_factory)
    keys = [(r.path, tuple(sorted(r.methods or ()))) for r in routes]
    assert len(keys) == len(set(keys)) > 150
    # Order still decides: the OData service document, not a form named "x.svc".
    scope = {"type": "http", "method": "GET", "path": "/v1/projects/1/forms/x.svc/Submissions"}
    first = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
    assert first.path == "/v1/projects/{project_id}/forms/{xml_form_id}.svc/{resource:path}"
    # Routes of routers included inside another carry the tags their router gave them.
    jobs = [r for r in routes if "/analytics/jobs" in r.path]
    assert jobs and all("analytics" in r.tags for r in jobs)
