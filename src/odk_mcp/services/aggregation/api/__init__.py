"""HTTP routers of the aggregation service."""

from fastapi import APIRouter

from odk_mcp.services.aggregation.api import odata, summary


def router() -> APIRouter:
    api = APIRouter()
    api.include_router(odata.router)
    api.include_router(summary.router)
    return api
