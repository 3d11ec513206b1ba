"""Turning credentials into an Actor: sessions, HTTP Basic, cookies, app-user keys.

The gateway extracts raw credentials from the HTTP request into `Credentials`; every rule
about them (Basic only over HTTPS, CSRF on cookie-authenticated changes, throttling of
failed logins, a bad app-user key being 403 rather than 401) lives here.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import anyio
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.engine import RowMapping

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import ANONYMOUS, Actor, ActorType, AuthMethod
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.actor_cache import ActorCache
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
    """Failed-login limits per account and per client address (the `limits` library).

    Attempts still being verified count against the limits too: otherwise many guesses
    sent at once would all pass the check before the first of them is recorded as failed.
    """

    def __init__(self, per_account: str, per_ip: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_account = parse(per_account)
        self._per_ip = parse(per_ip)
        self._in_flight: Counter[tuple[str, str]] = Counter()

    def _limits(self, email: str, client_ip: str | None) -> list[tuple[RateLimitItem, str, str]]:
        limits = [(self._per_account, "account", email.strip().lower())]
        if client_ip:
            limits.append((self._per_ip, "ip", client_ip))
        return limits

    def check(self, email: str, client_ip: str | None) -> None:
        """Raise 429.1 when recorded failures plus attempts in flight reach a limit."""
        for item, kind, key in self._limits(email, client_ip):
            cost = 1 + self._in_flight[(kind, key)]
            if not self._limiter.test(item, "login", kind, key, cost=cost):
                reset_at, remaining = self._limiter.get_window_stats(item, "login", kind, key)
                # Refused only because of attempts in flight: those end within a second or so.
                wait = reset_at - time.time() if remaining <= 0 else 0
                retry_after = max(1, int(wait) + 1)
                raise Problem(
                    problems.TOO_MANY_LOGIN_ATTEMPTS,
                    details={"retryAfter": retry_after},
                    headers={"Retry-After": str(retry_after)},
                )

    @contextmanager
    def attempt(self, email: str, client_ip: str | None) -> Iterator[None]:
        """Admit one attempt (or raise 429.1), counted as in flight until the block ends."""
        self.check(email, client_ip)
        slots = [(kind, key) for _, kind, key in self._limits(email, client_ip)]
        self._in_flight.update(slots)
        try:
            yield
        finally:
            self._in_flight.subtract(slots)
            for slot in slots:
                if self._in_flight[slot] <= 0:
                    del self._in_flight[slot]

    def failed(self, email: str, client_ip: str | None) -> None:
        for item, kind, key in self._limits(email, client_ip):
            self._limiter.hit(item, "login", kind, key)


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

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    @staticmethod
    def key(email: str, password: str) -> str:
        return hashlib.sha256(f"{email.lower()}\0{password}".encode("utf-8", "surrogatepass")).hexdigest()

    def verified(self, email: str, password: str, stored_hash: str) -> bool:
        key = self.key(email, password)
        entry = self._entries.get(key)
        if entry is None:
            return False
        if entry[0] != stored_hash or entry[1] <= time.monotonic():
            del self._entries[key]  # expired, or the password changed: it can never match again
            return False
        self._entries.move_to_end(key)  # least recently used entries are evicted first
        return True

    def remember(self, email: str, password: str, stored_hash: str) -> None:
        if self._ttl <= 0:
            return
        key = self.key(email, password)
        self._entries[key] = (stored_hash, time.monotonic() + self._ttl)
        self._entries.move_to_end(key)
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
    def __init__(
        self,
        db: Database,
        throttle: LoginThrottle,
        basic_cache: BasicCache,
        actors: ActorCache | None = None,
    ) -> None:
        self._db = db
        self.throttle = throttle
        self._basic_cache = basic_cache
        self.actors = actors if actors is not None else ActorCache(0)

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
                return await self._by_basic(creds.email or "", creds.password or "", client_ip)
        raise Problem(problems.AUTHENTICATION_FAILED)

    async def _by_basic(self, email: str, password: str, client_ip: str | None) -> Actor:
        """HTTP Basic on a request: the remembered actor of these credentials, or a verification.
        (Logins always verify, so their own duties, such as re-hashing, happen.)"""
        key = ("basic", BasicCache.key(email, password))
        # Turning the Basic cache off (basic_auth_cache_seconds = 0) means a full verification
        # on every request: the actor cache then does not remember Basic credentials either.
        if not self._basic_cache.enabled:
            return await self.verify_password(email, password, client_ip)
        cached = self.actors.get(key)
        if cached is not None:
            self.throttle.check(email, client_ip)  # a locked-out account stays locked out
            return cached
        generation = self.actors.generation
        actor = await self.verify_password(email, password, client_ip)
        self.actors.put(key, actor, generation)
        return actor

    async def _by_session(self, creds: Credentials, via: AuthMethod, failure: problems.ProblemType) -> Actor:
        token = creds.token or ""
        if not token or len(token) > 256:
            raise Problem(failure)
        token_hash = cred.hash_token(token)
        key = (via.value, token_hash)
        cached = self.actors.get(key)
        if cached is not None:
            return cached
        generation = self.actors.generation
        async with self._db.read() as conn:
            row = await store.actor_by_session(conn, token_hash)
        if row is None:
            raise Problem(failure)
        actor = actor_from_row(row, via, session_hash=token_hash)
        self.actors.put(key, actor, generation, row["expires_at"])
        return actor

    async def _upgrade_hash(self, actor_id: int, stored: str, password: str) -> None:
        """Re-hash at the configured argon2 cost after an operator changed it (on a good login)."""
        new = await anyio.to_thread.run_sync(cred.hash_password, password)
        async with self._db.transaction() as conn:
            await store.upgrade_password_hash(conn, actor_id, stored, new)

    async def actor(self, actor_id: int, via: AuthMethod = AuthMethod.KEY) -> Actor | None:
        """A live actor with its current grants, by id (for credentials that name an actor, such as
        signed download links, so that rights are those of the moment the link is used)."""
        async with self._db.read() as conn:
            row = await store.actor_with_grants(conn, actor_id)
        return actor_from_row(row, via) if row is not None else None

    async def verify_password(self, email: str, password: str, client_ip: str | None) -> Actor:
        """Check an email and password (login or Basic); throttled; constant-time on unknown emails."""
        with self.throttle.attempt(email, client_ip):
            row = None
            # PostgreSQL text cannot hold NUL, so no account has such an email (and the
            # query would fail): treat it as unknown, at the same cost as any other.
            if "\x00" not in email:
                async with self._db.read() as conn:
                    row = await store.user_by_email(conn, email)
            stored = row["password_hash"] if row is not None else None
            if row is not None and stored and self._basic_cache.verified(email, password, stored):
                return actor_from_row(row, AuthMethod.BASIC)
            ok = await anyio.to_thread.run_sync(cred.verify_password, stored or cred.dummy_hash(), password)
            if row is None or not stored or not ok:
                self.throttle.failed(email, client_ip)
                raise Problem(problems.AUTHENTICATION_FAILED)
            if cred.needs_rehash(stored):
                await self._upgrade_hash(row["id"], stored, password)
        self._basic_cache.remember(email, password, stored)
        return actor_from_row(row, AuthMethod.BASIC)
