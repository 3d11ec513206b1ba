"""`/mcp` inside the main app: streamable HTTP with bearer auth, protected resource metadata,
403 `insufficient_scope` up front, DNS-rebinding protection, and the media download links.

The pieces are the SDK's (bearer backend, `RequireAuthMiddleware`, the session manager, the
RFC 9728 metadata route); this module composes them with the scope gate and mounts them on
the FastAPI app. The session manager is stateless (every request stands alone), so any number
of server replicas can answer a client; both the current protocol revision and the handshake
era before it are served.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from odk_mcp.bootstrap import Container
from odk_mcp.mcp.auth import UsersTokenVerifier
from odk_mcp.mcp.media import EXPORT_ROUTE, export_endpoint, media_endpoint
from odk_mcp.mcp.media import ROUTE as MEDIA_ROUTE
from odk_mcp.mcp.server import TOOL_SCOPES, build_server, media_links
from odk_mcp.services.users import ALL_SCOPES

PATH = "/mcp"


def needed_scopes(message: Any) -> set[str]:
    """The scopes a JSON-RPC message needs (tools by name; resources and prompts need `read`)."""
    if not isinstance(message, dict):
        return set()
    method = message.get("method")
    raw = message.get("params")
    params: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if method == "tools/call":
        return set(TOOL_SCOPES.get(str(params.get("name")), ()))
    if method in ("resources/read", "prompts/get"):
        uri = str(params.get("uri", ""))
        return set() if uri == "odk://guide/filters" else {"read"}
    return set()


class ScopeGate:
    """Answers 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope=…` before a
    call the token's scopes do not cover reaches the server, so clients can step up (ask the
    user for a token with more scopes). The tools check scopes again themselves."""

    def __init__(self, app: ASGIApp, metadata_url: str, max_bytes: int) -> None:
        self.app = app
        self.metadata_url = metadata_url
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            # Stateless: no server-initiated stream to open (GET) and no session to end (DELETE);
            # the transport specification allows 405 for both.
            await _json(send, 405, {"error": "method_not_allowed", "allow": "POST"}, allow="POST")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _json(send, 413, {"error": "payload_too_large", "max": self.max_bytes})
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None  # the transport answers malformed JSON-RPC itself
        messages = parsed if isinstance(parsed, list) else [parsed]
        needed = set().union(*(needed_scopes(m) for m in messages))
        held = set(getattr(scope.get("auth"), "scopes", ()))
        missing = sorted(needed - held)
        if missing:
            wanted = " ".join(sorted(needed | held))
            challenge = (
                f'Bearer error="insufficient_scope", scope="{wanted}",'
                f' resource_metadata="{self.metadata_url}",'
                f' error_description="This call needs the {", ".join(missing)} scope"'
            )
            await _json(
                send,
                403,
                {"error": "insufficient_scope", "error_description": f"Missing scope: {' '.join(missing)}"},
                challenge,
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _json(
    send: Send, status: int, body: dict[str, Any], challenge: str | None = None, allow: str | None = None
) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if challenge:
        headers.append((b"www-authenticate", challenge.encode()))
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def allowed_hosts(setting: str, public_url: str) -> TransportSecuritySettings:
    hosts = [h.strip() for h in setting.split(",") if h.strip()]
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    public = urlsplit(public_url)
    if public.netloc:
        hosts += [public.netloc, f"{public.hostname}:*", public.hostname or ""]
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https") if h]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class McpHttp:
    """The MCP endpoint of one app: routes to mount and a lifespan to run."""

    def __init__(self, container: Container) -> None:
        settings = container.settings
        self.server = build_server(container)
        resource = settings.public_url.rstrip("/") + PATH
        self.resource_url = AnyHttpUrl(resource)
        self.metadata_url = str(build_resource_metadata_url(self.resource_url))
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=False,
            max_request_body_size=settings.max_json_body_bytes,
            transport_security=allowed_hosts(settings.mcp_allowed_hosts, settings.public_url),
        )
        gated = ScopeGate(
            StreamableHTTPASGIApp(self.server.session_manager),
            self.metadata_url,
            settings.max_json_body_bytes,
        )
        required = RequireAuthMiddleware(gated, [], AnyHttpUrl(self.metadata_url))
        self.endpoint: ASGIApp = AuthenticationMiddleware(
            AuthContextMiddleware(required), backend=BearerAuthBackend(UsersTokenVerifier(container.users))
        )
        self.metadata_routes = create_protected_resource_routes(
            resource_url=self.resource_url,
            authorization_servers=[AnyHttpUrl(settings.public_url)],
            scopes_supported=list(ALL_SCOPES),
            resource_name="odk-mcp",
        )
        links = media_links(container)
        self.media = media_endpoint(links, container.users, container.submissions)
        self.export_file = export_endpoint(links, container.users, container.exports)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.server.session_manager.run():
            yield


class _Deferred:
    """An ASGI app forwarding to one of `app.state.mcp`'s, looked up per request (raw ASGI, so the
    response can stream)."""

    def __init__(self, pick: Any) -> None:
        self._pick = pick

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._pick(scope["app"].state.mcp)(scope, receive, send)


def mount(app: Any) -> None:
    """Add the MCP routes to the app; they reach the `McpHttp` in `app.state.mcp` (set once the
    container exists, which is at start-up when the app opens its own)."""

    async def media(request: Any) -> Any:
        return await request.app.state.mcp.media(request)

    async def export_file(request: Any) -> Any:
        return await request.app.state.mcp.export_file(request)

    well_known = urlsplit(str(build_resource_metadata_url(AnyHttpUrl("http://localhost" + PATH)))).path
    endpoint = _Deferred(lambda mcp: mcp.endpoint)
    metadata = _Deferred(lambda mcp: mcp.metadata_routes[0].app)
    app.router.routes.append(Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    app.router.routes.append(Route(well_known, endpoint=metadata, methods=["GET"]))
    app.add_route(MEDIA_ROUTE, media, methods=["GET"])
    app.add_route(EXPORT_ROUTE, export_file, methods=["GET"])
