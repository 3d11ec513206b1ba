"""What the users service hands out: actors, users, sessions and roles as DTOs with JSON shapes
matching ODK Central (so pyODK's models accept them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from odk_mcp.kernel.clock import iso
from odk_mcp.services.users.domain.roles import ROLES_CREATED_AT, Role


@dataclass(frozen=True)
class ActorView:
    id: int
    type: str
    display_name: str
    email: str | None
    project_id: int | None
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None
    token: str | None = None  # an app user's token, only in the response that created it

    @classmethod
    def from_row(cls, row: Mapping[Any, Any], token: str | None = None) -> ActorView:
        return cls(
            id=row["id"],
            type=row["type"],
            display_name=row["display_name"],
            email=row["email"],
            project_id=row["project_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            token=token,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "displayName": self.display_name,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "deletedAt": iso(self.deleted_at),
        }
        if self.type == "user":
            body["email"] = self.email
        else:
            body["projectId"] = self.project_id
            body["token"] = self.token
        return body


@dataclass(frozen=True)
class PublicLinkView:
    """A public link: its actor, Enketo's single-submission flag, and who created it."""

    actor: ActorView
    once: bool
    created_by: ActorView | None = None

    def to_json(self, extended: bool = False) -> dict[str, Any]:
        body = {**self.actor.to_json(), "once": self.once}
        if extended:
            body["createdBy"] = self.created_by.to_json() if self.created_by is not None else None
        return body


@dataclass(frozen=True)
class SessionView:
    token: str
    csrf: str
    created_at: datetime
    expires_at: datetime | None

    def max_age_seconds(self) -> int | None:
        if self.expires_at is None:
            return None
        return max(0, int((self.expires_at - self.created_at).total_seconds()))

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "csrf": self.csrf,
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.expires_at),
        }


def role_json(role: Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "system": role.system,
        "createdAt": iso(ROLES_CREATED_AT),
        "updatedAt": None,
        "verbs": sorted(role.verbs),
    }
