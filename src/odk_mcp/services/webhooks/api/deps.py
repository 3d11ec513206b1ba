"""FastAPI dependencies of the webhooks routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

if TYPE_CHECKING:
    from odk_mcp.services.webhooks import WebhooksService


def get_webhooks(request: Request) -> WebhooksService:
    return cast("WebhooksService", request.app.state.webhooks)


Webhooks = Annotated["WebhooksService", Depends(get_webhooks)]
