"""HTTP routers of the forms service."""

from fastapi import APIRouter

from odk_mcp.services.forms.api import projects


def router() -> APIRouter:
    api = APIRouter()
    api.include_router(projects.router)
    return api
