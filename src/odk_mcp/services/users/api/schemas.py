"""Request bodies of the users API (unknown fields are ignored, like ODK Central)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, StrictBool

from odk_mcp.kernel.web import RequestBody


class LoginBody(RequestBody):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class NewUserBody(RequestBody):
    email: str = Field(max_length=320)
    password: str | None = Field(default=None, max_length=1024)
    displayName: str | None = Field(default=None, max_length=1000)


class UserPatchBody(RequestBody):
    email: str | None = Field(default=None, max_length=320)
    displayName: str | None = Field(default=None, max_length=1000)


class PasswordBody(RequestBody):
    old: str = Field(max_length=1024)
    new: str = Field(max_length=1024)


class AppUserBody(RequestBody):
    displayName: str = Field(max_length=1000)


class PublicLinkBody(RequestBody):
    displayName: str = Field(max_length=1000)
    once: StrictBool = False


class ApiTokenBody(RequestBody):
    name: str = Field(max_length=1000)
    scopes: list[str] = Field(max_length=20)
    expiresAt: datetime | None = None
