"""HTTP routers of the webhooks service."""

from fastapi import APIRouter

from odk_mcp.services.webhooks.api import webhooks


def router() -> APIRouter:
    api = APIRouter()
    api.include_router(webhooks.router)
    return api
