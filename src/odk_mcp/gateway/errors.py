"""The one place errors become HTTP responses: `{message, code, details}` with ODK codes."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from odk_mcp.kernel import problems
from odk_mcp.kernel.openrosa import envelope, is_openrosa_path
from odk_mcp.kernel.problems import Problem, ProblemType
from odk_mcp.kernel.web import NUL_IN_TEXT

log = structlog.get_logger("odk_mcp.errors")


def render(request: Request, problem: Problem) -> Response:
    """JSON everywhere, except the OpenRosa routes, which answer an OpenRosa envelope."""
    if is_openrosa_path(request.url.path):
        return envelope(problem.message, problem.status, nature="error", headers=problem.headers or None)
    return problem_response(problem)


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {"message": problem.message, "code": problem.code}
    if problem.details:
        body["details"] = problem.details
    return JSONResponse(body, status_code=problem.status, headers=problem.headers or None)


# Starlette's own HTTP errors (routing, body parsing, size limits) in the catalogue's terms.
_HTTP_PROBLEMS: dict[int, ProblemType] = {
    404: problems.NOT_FOUND,
    405: problems.METHOD_NOT_ALLOWED,
    413: problems.PAYLOAD_TOO_LARGE,
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette's 405 names only the first
    matching route's methods, and FastAPI makes one route per method."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
    if any(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors):
        # A path that cannot name a resource (`/v1/users/abc`, an id out of range) is not found.
        return Problem(problems.NOT_FOUND)
    first = errors[0] if errors else {}
    kind = str(first.get("type", ""))
    location = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(location) or "body"
    if kind == "json_invalid":
        return Problem(problems.UNPARSEABLE, details={"format": "json"})
    if kind == "missing":
        return Problem(problems.MISSING_PARAMETER, f"Required parameter {field} missing.", {"field": field})
    if kind in ("string_too_long", "too_long"):
        return Problem(problems.VALUE_TOO_LONG, details={"field": field})
    if kind == NUL_IN_TEXT:
        return Problem(
            problems.UNEXPECTED_VALUE, f"{field} must not contain NUL characters.", {"field": field}
        )
    if kind == "model_attributes_type" or (kind.endswith("_type") and not location):
        return Problem(problems.UNPARSEABLE, "The request body must be a JSON object.", {"format": "json"})
    return Problem(
        problems.INVALID_DATA_TYPE,
        f"Invalid value for {field}: {first.get('msg', 'wrong type')}.",
        {"field": field},
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(request, _validation_problem(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = _HTTP_PROBLEMS.get(exc.status_code)
        if kind is not None:
            headers = dict(exc.headers or {})
            if exc.status_code == 405:
                headers["Allow"] = _allowed_methods(request)
            return render(request, Problem(kind, headers=headers))
        if exc.status_code == 400:
            # Starlette's own parse failures, e.g. a malformed multipart body.
            return render(request, Problem(problems.UNPARSEABLE, str(exc.detail), {"format": "request"}))
        return JSONResponse({"message": str(exc.detail), "code": float(exc.status_code)}, exc.status_code)

    async def on_data_error(request: Request, exc: Exception) -> Response:
        # PostgreSQL refused a value (class 22: out of range, NUL in text, ...). Input
        # validation should have caught it first; this net keeps such input from being a 500.
        log.warning("database_rejected_value", error_type=type(getattr(exc, "orig", exc)).__name__)
        return render(
            request,
            Problem(problems.UNEXPECTED_VALUE, "A value in the request cannot be stored or searched for."),
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The observability middleware has logged it (with the request id) and answered
        # already; this is Starlette's last resort for anything outside that middleware.
        return render(request, Problem(problems.INTERNAL))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(Exception, on_unexpected)
