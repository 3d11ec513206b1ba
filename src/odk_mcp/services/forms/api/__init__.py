"""HTTP routers of the forms service."""

from fastapi import APIRouter

from odk_mcp.services.forms.api import drafts, forms, openrosa, projects, sensitivity


def router() -> APIRouter:
    api = APIRouter()
    for module in (projects, openrosa, forms, drafts, sensitivity):
        api.include_router(module.router)
    return api
