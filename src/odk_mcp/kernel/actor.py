"""Who is making a request: the `Actor`, with the role grants resolved at authentication.

Every entry point (REST, OpenRosa, MCP, CLI, workers) turns its credentials into an Actor
once, and service facades authorize against it. Grants are loaded together with the actor
so that authorization itself is a pure function with no database round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ActorType(StrEnum):
    USER = "user"
    APP_USER = "field_key"  # ODK Central's name for app users
    PUBLIC_LINK = "public_link"
    SYSTEM = "system"  # the CLI and background workers acting for the server itself
    ANONYMOUS = "anonymous"


class AuthMethod(StrEnum):
    NONE = "none"
    BEARER = "bearer"
    BASIC = "basic"
    COOKIE = "cookie"
    KEY = "key"  # app-user token as /v1/key/{token}/ path prefix
    LOCAL = "local"  # CLI on the server machine


@dataclass(frozen=True)
class Grant:
    """A role held on a scope: sitewide (no project), a project, or one form of a project."""

    role_id: int
    project_id: int | None = None
    form_id: str | None = None

    @property
    def sitewide(self) -> bool:
        return self.project_id is None


@dataclass(frozen=True)
class Actor:
    id: int
    type: ActorType
    display_name: str
    grants: tuple[Grant, ...] = ()
    via: AuthMethod = AuthMethod.NONE
    session_hash: str | None = None  # the session this request authenticated with, if any
    csrf: str | None = None
    project_id: int | None = None  # home project of an app user or public link
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def anonymous(self) -> bool:
        return self.type is ActorType.ANONYMOUS


ANONYMOUS = Actor(id=0, type=ActorType.ANONYMOUS, display_name="anonymous")


# The server acting on its own behalf (the CLI on the server machine, background workers):
# an administrator everywhere, never stored as an actor row.
SYSTEM = Actor(
    id=-1, type=ActorType.SYSTEM, display_name="system", grants=(Grant(role_id=1),), via=AuthMethod.LOCAL
)
