"""Turning credentials into an Actor: sessions, HTTP Basic, cookies, app-user keys.

The gateway extracts raw credentials from the HTTP request into `Credentials`; every rule
about them (Basic only over HTTPS, CSRF on cookie-authenticated changes, throttling of
failed logins, a bad app-user key being 403 rather than 401) lives here.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

import anyio
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.engine import RowMapping

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import ANONYMOUS, Actor, ActorType, AuthMethod
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.adapters import store
from odk_mcp.services.users.domain import credentials as cred


class CredentialKind(StrEnum):
    NONE = "none"
    BEARER = "bearer"
    BASIC = "basic"
    COOKIE = "cookie"
    KEY = "key"
    PUBLIC_LINK = "public_link"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Credentials:
    kind: CredentialKind = CredentialKind.NONE
    token: str | None = None
    email: str | None = None
    password: str | None = None
    secure: bool = False  # the request came over HTTPS (directly or per a trusted proxy)
    unsafe_method: bool = False  # POST, PUT, PATCH, DELETE
    csrf: str | None = None  # X-CSRF-Token header or __csrf form field


class LoginThrottle:
    """Failed-login limits per account and per client address (the `limits` library)."""

    def __init__(self, per_account: str, per_ip: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_account = parse(per_account)
        self._per_ip = parse(per_ip)

    def check(self, email: str, client_ip: str | None) -> None:
        checks = [(self._per_account, "account", email.strip().lower())]
        if client_ip:
            checks.append((self._per_ip, "ip", client_ip))
        for item, kind, key in checks:
            if not self._limiter.test(item, "login", kind, key):
                reset_at, _ = self._limiter.get_window_stats(item, "login", kind, key)
                retry_after = max(1, int(reset_at - time.time()) + 1)
                raise Problem(
                    problems.TOO_MANY_LOGIN_ATTEMPTS,
                    details={"retryAfter": retry_after},
                    headers={"Retry-After": str(retry_after)},
                )

    def failed(self, email: str, client_ip: str | None) -> None:
        self._limiter.hit(self._per_account, "login", "account", email.strip().lower())
        if client_ip:
            self._limiter.hit(self._per_ip, "login", "ip", client_ip)


class BasicCache:
    """Remembers recently verified Basic credentials so each request is not a full argon2 hash.

    Keys are a hash of email and password (never the password itself); an entry is only
    honoured while the account's stored hash is unchanged, so a password change or a
    deleted account takes effect at once.
    """

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @staticmethod
    def _key(email: str, password: str) -> str:
        return hashlib.sha256(f"{email.lower()}\0{password}".encode("utf-8", "surrogatepass")).hexdigest()

    def verified(self, email: str, password: str, stored_hash: str) -> bool:
        entry = self._entries.get(self._key(email, password))
        return entry is not None and entry[0] == stored_hash and entry[1] > time.monotonic()

    def remember(self, email: str, password: str, stored_hash: str) -> None:
        if self._ttl <= 0:
            return
        self._entries[self._key(email, password)] = (stored_hash, time.monotonic() + self._ttl)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


def actor_from_row(row: RowMapping, via: AuthMethod, session_hash: str | None = None) -> Actor:
    return Actor(
        id=row["id"],
        type=ActorType(row["type"]),
        display_name=row["display_name"],
        grants=store.grants_of(row),
        via=via,
        session_hash=session_hash,
        csrf=row.get("csrf"),
        project_id=row["project_id"],
    )


class Authenticator:
    def __init__(self, db: Database, throttle: LoginThrottle, basic_cache: BasicCache) -> None:
        self._db = db
        self.throttle = throttle
        self._basic_cache = basic_cache

    async def authenticate(self, creds: Credentials, client_ip: str | None = None) -> Actor:
        match creds.kind:
            case CredentialKind.NONE:
                return ANONYMOUS
            case CredentialKind.MALFORMED:
                raise Problem(problems.AUTHENTICATION_FAILED)
            case CredentialKind.BEARER:
                return await self._by_session(creds, AuthMethod.BEARER, problems.AUTHENTICATION_FAILED)
            case CredentialKind.COOKIE:
                actor = await self._by_session(creds, AuthMethod.COOKIE, problems.AUTHENTICATION_FAILED)
                if creds.unsafe_method and not (
                    creds.csrf and actor.csrf and cred.same_secret(creds.csrf, actor.csrf)
                ):
                    raise Problem(problems.CSRF_FAILED)
                return actor
            case CredentialKind.KEY:
                # Central answers a bad app-user key with 403, not 401: Collect then
                # tells the user the token is no longer valid instead of asking for a login.
                actor = await self._by_session(creds, AuthMethod.KEY, problems.INSUFFICIENT_RIGHTS)
                if actor.type is not ActorType.APP_USER:
                    raise Problem(problems.INSUFFICIENT_RIGHTS)
                return actor
            case CredentialKind.PUBLIC_LINK:
                actor = await self._by_session(creds, AuthMethod.KEY, problems.INSUFFICIENT_RIGHTS)
                if actor.type is not ActorType.PUBLIC_LINK:
                    raise Problem(problems.INSUFFICIENT_RIGHTS)
                return actor
            case CredentialKind.BASIC:
                if not creds.secure:
                    raise Problem(problems.HTTPS_ONLY)
                return await self.verify_password(creds.email or "", creds.password or "", client_ip)
        raise Problem(problems.AUTHENTICATION_FAILED)

    async def _by_session(self, creds: Credentials, via: AuthMethod, failure: problems.ProblemType) -> Actor:
        token = creds.token or ""
        if not token or len(token) > 256:
            raise Problem(failure)
        token_hash = cred.hash_token(token)
        async with self._db.read() as conn:
            row = await store.actor_by_session(conn, token_hash)
        if row is None:
            raise Problem(failure)
        return actor_from_row(row, via, session_hash=token_hash)

    async def verify_password(self, email: str, password: str, client_ip: str | None) -> Actor:
        """Check an email and password (login or Basic); throttled; constant-time on unknown emails."""
        self.throttle.check(email, client_ip)
        async with self._db.read() as conn:
            row = await store.user_by_email(conn, email)
        stored = row["password_hash"] if row is not None else None
        if row is not None and stored and self._basic_cache.verified(email, password, stored):
            return actor_from_row(row, AuthMethod.BASIC)
        ok = await anyio.to_thread.run_sync(cred.verify_password, stored or cred.dummy_hash(), password)
        if row is None or not stored or not ok:
            self.throttle.failed(email, client_ip)
            raise Problem(problems.AUTHENTICATION_FAILED)
        self._basic_cache.remember(email, password, stored)
        return actor_from_row(row, AuthMethod.BASIC)
