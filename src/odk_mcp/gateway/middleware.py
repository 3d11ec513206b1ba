"""Pure ASGI middleware: app-user key paths, request ids + metrics + access log, body size
limits and the general rate limit. Pure ASGI (not BaseHTTPMiddleware) keeps streaming
responses streaming and costs little per request."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from odk_mcp.gateway.credentials import KEY_SCOPE
from odk_mcp.kernel import problems
from odk_mcp.kernel.openrosa import http_date
from odk_mcp.kernel.problems import ProblemType

access_log = structlog.get_logger("odk_mcp.access")
error_log = structlog.get_logger("odk_mcp.errors")

_KEY_PATH = re.compile(r"^/v1/(key|test)/([^/]+)(/.*)$")
DRAFT_SCOPE = "odk.draft_token"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_problem(send: Send, kind: ProblemType, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"message": kind.message, "code": kind.code}).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": kind.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class KeyPathMiddleware:
    """`/v1/key/{token}/rest` is served as `/v1/rest`, authenticated by the app-user token;
    `/v1/test/{token}/rest` likewise, with the token of a form draft (draft testing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = _KEY_PATH.match(scope["path"])
            if match is not None:
                scope = dict(scope)
                scope[KEY_SCOPE if match.group(1) == "key" else DRAFT_SCOPE] = match.group(2)
                scope["path"] = "/v1" + match.group(3)
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "odk_mcp_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "odk_mcp_http_errors_total",
            "HTTP responses with status >= 500",
            ["route"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "odk_mcp_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Request id (X-Request-Id in and out), the Date header, Prometheus metrics and one
    access-log line.

    The access log names the route template, never the raw path or query, so tokens in
    `/v1/key/{token}/…` or `?st=` never reach the logs.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        status: int | None = None
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                if not any(name.lower() == b"date" for name, _ in headers):
                    headers.append((b"date", http_date().encode()))
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Answered here rather than by Starlette's outermost error middleware, so that the
            # 500 carries the request id and its log line names it too.
            error_log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
            if status is None:
                await send_problem(send_with_id, problems.INTERNAL)
            raise
        finally:
            status = status or 500
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            if status >= 500:
                self.metrics.errors.labels(route).inc()
            actor = scope.get("state", {}).get("actor")
            access_log.info(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                actor_id=getattr(actor, "id", None),
            )
            structlog.contextvars.unbind_contextvars("request_id")


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with 413.1, whether declared or streamed.

    JSON bodies get the small JSON limit; other bodies (form definitions, attachments) get
    the upload limit here, and each upload endpoint enforces its own exact limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        max_upload_bytes: int | None = None,
        json_routes: tuple[tuple[re.Pattern[str], int], ...] = (),
    ) -> None:
        self.app = app
        self.max_json = max_bytes
        self.max_upload = max(max_upload_bytes or max_bytes, max_bytes)
        # Paths whose JSON bodies have their own limit (bulk entity creation).
        self.json_routes = json_routes

    def _json_limit(self, path: str) -> int:
        for pattern, limit in self.json_routes:
            if pattern.match(path):
                return limit
        return self.max_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        is_json = content_type in (b"", b"application/json") or content_type.endswith(b"+json")
        limit = self._json_limit(scope["path"]) if is_json else self.max_upload
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await send_problem(send, problems.INVALID_HEADER)
                return
            if too_big:
                await send_problem(send, problems.PAYLOAD_TOO_LARGE, {"connection": "close"})
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException, not a Problem: FastAPI re-raises it from body parsing
                    # (anything else becomes a 400 there); the error handler renders 413.1.
                    raise HTTPException(413, headers={"Connection": "close"})
            return message

        await self.app(scope, limited_receive, send)


class RateLimitMiddleware:
    """The general per-client request limit (off unless configured)."""

    def __init__(self, app: ASGIApp, limit: str) -> None:
        self.app = app
        self.item = parse(limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client: Any = scope.get("client")
        key = client[0] if client else "unknown"
        if not self.limiter.hit(self.item, "api", key):
            reset_at, _ = self.limiter.get_window_stats(self.item, "api", key)
            retry_after = max(1, int(reset_at - time.time()) + 1)
            await send_problem(send, problems.RATE_LIMITED, {"retry-after": str(retry_after)})
            return
        await self.app(scope, receive, send)
