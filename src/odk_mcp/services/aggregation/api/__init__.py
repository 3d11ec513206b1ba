"""HTTP routers of the aggregation service."""

from fastapi import APIRouter

from odk_mcp.services.aggregation.api import odata


def router() -> APIRouter:
    api = APIRouter()
    api.include_router(odata.router)
    return api
