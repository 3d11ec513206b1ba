"""The users service: user management and access control (public surface).

Other packages import only what is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from odk_mcp.infra.sealing import Sealer
from odk_mcp.kernel.db import Database
from odk_mcp.services.users.access import AccessPolicy
from odk_mcp.services.users.accounts import Accounts
from odk_mcp.services.users.actor_cache import ActorCache
from odk_mcp.services.users.api_tokens import ApiTokens, ApiTokenView, ScopedActor
from odk_mcp.services.users.app_users import AppUsers
from odk_mcp.services.users.assignments import Assignments, Scope
from odk_mcp.services.users.authentication import (
    Authenticator,
    BasicCache,
    CredentialKind,
    Credentials,
    LoginThrottle,
)
from odk_mcp.services.users.domain.credentials import configure_hashing as configure_password_hashing
from odk_mcp.services.users.domain.scopes import ALL_SCOPES
from odk_mcp.services.users.domain.scopes import DESCRIPTIONS as SCOPE_DESCRIPTIONS
from odk_mcp.services.users.names import ActorNames
from odk_mcp.services.users.ports import Catalogue
from odk_mcp.services.users.public_links import PublicLinks


@dataclass(frozen=True)
class UsersService:
    policy: AccessPolicy
    authenticator: Authenticator
    accounts: Accounts
    assignments: Assignments
    app_users: AppUsers
    public_links: PublicLinks
    api_tokens: ApiTokens
    names: ActorNames


def build_users_service(
    db: Database,
    policy: AccessPolicy,
    catalogue: Catalogue,
    session_ttl: timedelta,
    basic_cache_seconds: float,
    login_limit_per_account: str,
    login_limit_per_ip: str,
    sealer: Sealer,
    actor_cache_seconds: float = 0.0,
) -> UsersService:
    actors = ActorCache(actor_cache_seconds)
    authenticator = Authenticator(
        db,
        LoginThrottle(login_limit_per_account, login_limit_per_ip),
        BasicCache(basic_cache_seconds),
        actors,
    )
    return UsersService(
        policy=policy,
        authenticator=authenticator,
        accounts=Accounts(db, policy, authenticator, session_ttl),
        assignments=Assignments(db, policy, catalogue, actors),
        app_users=AppUsers(db, policy, catalogue, sealer, actors),
        public_links=PublicLinks(db, policy, catalogue, sealer, actors),
        api_tokens=ApiTokens(db, authenticator),
        names=ActorNames(db),
    )


__all__ = [
    "ALL_SCOPES",
    "SCOPE_DESCRIPTIONS",
    "AccessPolicy",
    "ActorNames",
    "ApiTokenView",
    "ApiTokens",
    "Catalogue",
    "CredentialKind",
    "Credentials",
    "Scope",
    "ScopedActor",
    "UsersService",
    "build_users_service",
    "configure_password_hashing",
]
