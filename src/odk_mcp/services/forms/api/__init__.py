"""HTTP routers of the forms service."""

from fastapi import APIRouter

from odk_mcp.services.forms.api import drafts, forms, openrosa, projects


def router() -> APIRouter:
    api = APIRouter()
    for module in (projects, openrosa, forms, drafts):
        api.include_router(module.router)
    return api
