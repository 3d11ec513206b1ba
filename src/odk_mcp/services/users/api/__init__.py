"""HTTP routers of the users service."""

from fastapi import APIRouter

from odk_mcp.services.users.api import app_users, assignments, public_links, roles, sessions, tokens, users


def router() -> APIRouter:
    api = APIRouter()
    for module in (sessions, tokens, users, roles, assignments, app_users, public_links):
        api.include_router(module.router)
    return api
