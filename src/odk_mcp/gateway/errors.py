"""The one place errors become HTTP responses: `{message, code, details}` with ODK codes."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

log = structlog.get_logger("odk_mcp.errors")


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {"message": problem.message, "code": problem.code}
    if problem.details:
        body["details"] = problem.details
    return JSONResponse(body, status_code=problem.status, headers=problem.headers or None)


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
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
    if kind == "model_attributes_type" or (kind.endswith("_type") and not location):
        return Problem(problems.UNPARSEABLE, "The request body must be a JSON object.", {"format": "json"})
    return Problem(
        problems.INVALID_DATA_TYPE,
        f"Invalid value for {field}: {first.get('msg', 'wrong type')}.",
        {"field": field},
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(_validation_problem(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return problem_response(Problem(problems.NOT_FOUND))
        if exc.status_code == 405:
            return problem_response(Problem(problems.METHOD_NOT_ALLOWED))
        if exc.status_code == 400:
            # Starlette's own parse failures, e.g. a malformed multipart body.
            return problem_response(Problem(problems.UNPARSEABLE, str(exc.detail), {"format": "request"}))
        return JSONResponse({"message": str(exc.detail), "code": float(exc.status_code)}, exc.status_code)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        return problem_response(Problem(problems.INTERNAL))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
