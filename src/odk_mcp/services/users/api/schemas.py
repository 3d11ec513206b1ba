"""Request bodies of the users API (unknown fields are ignored, like ODK Central)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class LoginBody(_Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class NewUserBody(_Body):
    email: str = Field(max_length=320)
    password: str | None = Field(default=None, max_length=1024)
    displayName: str | None = Field(default=None, max_length=1000)


class UserPatchBody(_Body):
    email: str | None = Field(default=None, max_length=320)
    displayName: str | None = Field(default=None, max_length=1000)


class PasswordBody(_Body):
    old: str = Field(max_length=1024)
    new: str = Field(max_length=1024)


class AppUserBody(_Body):
    displayName: str = Field(max_length=1000)
