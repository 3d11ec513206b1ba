"""HTTP routers of the users service."""

from fastapi import APIRouter

from odk_mcp.services.users.api import app_users, assignments, roles, sessions, tokens, users


def router() -> APIRouter:
    api = APIRouter()
    for module in (sessions, tokens, users, roles, assignments, app_users):
        api.include_router(module.router)
    return api
