"""`create_app()`: every service router in one FastAPI app, with auth, errors, limits, metrics."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import _IncludedRouter
from starlette.routing import BaseRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from odk_mcp import __version__
from odk_mcp.bootstrap import Container, open_container
from odk_mcp.events.api import router as audits_router
from odk_mcp.events.api_system import router as events_router
from odk_mcp.events.metrics import DeliveryMetrics
from odk_mcp.gateway import health
from odk_mcp.gateway.credentials import credentials_from
from odk_mcp.gateway.errors import install_error_handlers
from odk_mcp.gateway.middleware import (
    BodyLimitMiddleware,
    KeyPathMiddleware,
    Metrics,
    ObservabilityMiddleware,
    RateLimitMiddleware,
)
from odk_mcp.kernel.actor import Actor
from odk_mcp.mcp.http import McpHttp
from odk_mcp.mcp.http import mount as mount_mcp
from odk_mcp.services.aggregation.api import router as aggregation_router
from odk_mcp.services.aggregation.exports.api import router as exports_router
from odk_mcp.services.analytics.api import router as analytics_router
from odk_mcp.services.entities.api import router as entities_router
from odk_mcp.services.forms.api import router as forms_router
from odk_mcp.services.submissions.api import plain_routes as submission_hot_routes
from odk_mcp.services.submissions.api import router as submissions_router
from odk_mcp.services.users.api import router as users_router
from odk_mcp.services.webhooks import WebhookMetrics
from odk_mcp.services.webhooks.api import router as webhooks_router
from odk_mcp.settings import Settings


def _attach(app: FastAPI, container: Container) -> None:
    app.state.container = container
    app.state.users = container.users
    app.state.forms = container.forms
    app.state.submissions = container.submissions
    app.state.entities = container.entities
    app.state.exports = container.exports
    app.state.webhooks = container.webhooks
    app.state.aggregation = container.aggregation
    app.state.analytics = container.analytics
    app.state.audit_log = container.audit_log
    app.state.deliveries = container.deliveries

    async def resolve_actor(request: Request) -> Actor:
        creds = await credentials_from(request)
        client_ip = request.client.host if request.client else None
        return await container.users.authenticator.authenticate(creds, client_ip)

    app.state.resolve_actor = resolve_actor
    app.state.mcp = McpHttp(container)


def _flat(router: APIRouter) -> Iterator[BaseRoute]:
    """The router's routes, with those of the routers it includes in their place, in order.

    The app lists every route itself instead of including the services' routers: FastAPI
    (0.163) matches an included router by scanning its routes twice and rewriting the scope at
    each candidate, which cost 0.2-0.4 ms per request before the route was even found (about
    1 ms for a path that matches nothing). None of our includes adds a prefix, tags or
    dependencies, so each route is the same route either way (tests/api/test_routing.py).
    """
    for route in router.routes:
        if isinstance(route, _IncludedRouter):
            context = route.include_context
            if context.prefix or context.dependencies or context.responses:
                raise ValueError("a flattened router must be included without prefix or dependencies")
            for inner in _flat(route.original_router):
                if not set(context.tags) <= set(getattr(inner, "tags", context.tags)):
                    raise ValueError(f"{getattr(inner, 'path', inner)} must carry its router's tags itself")
                yield inner
        else:
            yield route


# Bulk entity creation takes larger JSON bodies than the rest of the API.
ENTITY_BULK_PATH = re.compile(r"^/v1/projects/[^/]+/datasets/[^/]+/entities$")


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """The ASGI app. With a container (tests), it is used as is; otherwise the lifespan opens one."""
    settings = container.settings if container is not None else (settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if container is not None:
            async with app.state.mcp.running():
                yield
            return
        async with open_container(settings) as opened:
            _attach(app, opened)
            await opened.start()
            # What is alive after start-up (modules, routes, caches) lives as long as the process:
            # moved out of the collector's sight, so full collections stop walking it again and again.
            gc.collect()
            gc.freeze()
            async with app.state.mcp.running():
                yield

    app = FastAPI(
        title="odk-mcp",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    if container is not None:
        _attach(app, container)
    app.state.metrics = Metrics()
    app.state.delivery_metrics = DeliveryMetrics(app.state.metrics.registry)
    app.state.webhook_metrics = WebhookMetrics(app.state.metrics.registry)
    install_error_handlers(app)
    app.router.routes.extend(
        route
        for router in (
            health.router,
            users_router(),
            # Before the forms routes: `/forms/{xmlFormId}` would also match `/forms/x.svc`.
            aggregation_router(),
            forms_router(),
            submissions_router(),
            entities_router(),
            exports_router(),
            webhooks_router(),
            analytics_router,
            audits_router,
            events_router,
        )
        for route in _flat(router)
    )
    # The OpenRosa submission POST, as plain Starlette routes matched first (the hot path:
    # see services/submissions/api/openrosa.py).
    app.router.routes[0:0] = submission_hot_routes()
    mount_mcp(app)

    # Added innermost first: the request passes key-path → observability → rate → body limit.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_json_body_bytes,
        max_upload_bytes=max(
            settings.max_form_bytes, settings.max_attachment_bytes, settings.max_submission_bytes
        ),
        json_routes=((ENTITY_BULK_PATH, settings.max_entity_bulk_bytes),),
    )
    if settings.rate_limit.strip():
        app.add_middleware(RateLimitMiddleware, limit=settings.rate_limit)
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)
    app.add_middleware(KeyPathMiddleware)
    if settings.trust_forwarded_proto:
        # Outermost: the scheme and client address are the proxy's client's from here on.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app
