"""FastAPI dependencies of the forms routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

if TYPE_CHECKING:
    from odk_mcp.services.forms import FormsService


def get_forms(request: Request) -> FormsService:
    return cast("FormsService", request.app.state.forms)


Forms = Annotated["FormsService", Depends(get_forms)]
