"""FastAPI dependencies of the users routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

if TYPE_CHECKING:
    from odk_mcp.services.users import UsersService


def get_users(request: Request) -> UsersService:
    return cast("UsersService", request.app.state.users)


Users = Annotated["UsersService", Depends(get_users)]
