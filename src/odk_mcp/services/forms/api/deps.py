"""FastAPI dependencies of the forms routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

if TYPE_CHECKING:
    from odk_mcp.services.forms import FormsService


def get_forms(request: Request) -> FormsService:
    return cast("FormsService", request.app.state.forms)


Forms = Annotated["FormsService", Depends(get_forms)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413.1 past `limit` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(problems.PAYLOAD_TOO_LARGE, details={"limit": limit})
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(problems.PAYLOAD_TOO_LARGE, details={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)
