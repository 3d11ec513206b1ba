"""HTTP routers of the submissions service."""

from fastapi import APIRouter

from odk_mcp.services.submissions.api import openrosa, rest
from odk_mcp.services.submissions.api.openrosa import plain_routes

__all__ = ["plain_routes", "router"]


def router() -> APIRouter:
    api = APIRouter()
    for module in (openrosa, rest):
        api.include_router(module.router)
    return api
