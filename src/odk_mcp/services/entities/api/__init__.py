"""HTTP routers of the entities service."""

from fastapi import APIRouter

from odk_mcp.services.entities.api import datasets, entities, files, odata


def router() -> APIRouter:
    api = APIRouter()
    # OData first: `/datasets/{name}.svc` would otherwise be read as a list named "x.svc".
    for module in (odata, files, datasets, entities):
        api.include_router(module.router)
    return api
