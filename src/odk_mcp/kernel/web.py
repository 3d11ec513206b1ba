"""The HTTP-facing pieces every service router shares: the current actor and small parsers.

The gateway decides how a request's credentials become an Actor and installs that as
`app.state.resolve_actor`; routers only declare `actor: CurrentActor`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem


async def current_actor(request: Request) -> Actor:
    cached = getattr(request.state, "actor", None)
    if isinstance(cached, Actor):
        return cached
    actor: Actor = await request.app.state.resolve_actor(request)
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]

# Server ids are PostgreSQL `integer`s: a path id outside that range names nothing (404.1)
# rather than reaching the database and failing there.
MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]

# The validation error type `RequestBody` raises for NUL characters (rendered as 400.8).
NUL_IN_TEXT = "text_contains_nul"


class RequestBody(BaseModel):
    """Base of JSON request bodies: unknown fields are ignored (like ODK Central), and text
    holding NUL characters is refused up front, since PostgreSQL text cannot store them."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError(NUL_IN_TEXT, "Text must not contain NUL characters.")
        return value


def extended(request: Request) -> bool:
    """Whether the client asked for extended metadata (`X-Extended-Metadata: true`)."""
    return request.headers.get("x-extended-metadata", "").strip().lower() == "true"


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """Query-string booleans, case-insensitive (pyODK sends `True`/`False`)."""
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise Problem(
        problems.INVALID_DATA_TYPE, f"{name} must be true or false.", {"field": name, "value": value}
    )


def success() -> dict[str, bool]:
    return {"success": True}


async def read_body(request: Request, limit: int) -> bytes:
    """A raw request body, refused with 413.1 past `limit` (declared or streamed)."""
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
