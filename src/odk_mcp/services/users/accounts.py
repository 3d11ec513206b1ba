"""Web users and their sessions: create, read, update, delete, passwords, login, logout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor, ActorType
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.access import AccessPolicy
from odk_mcp.services.users.actor_cache import changing
from odk_mcp.services.users.adapters import store
from odk_mcp.services.users.adapters.tables import actors, assignments, sessions
from odk_mcp.services.users.authentication import Authenticator
from odk_mcp.services.users.domain import credentials as cred
from odk_mcp.services.users.domain import roles
from odk_mcp.services.users.views import ActorView, SessionView

MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200


def check_password(password: str, email: str | None) -> None:
    reasons = cred.password_problems(password, email)
    if reasons:
        raise Problem(problems.PASSWORD_TOO_WEAK, details={"reasons": reasons})


def check_email(email: str) -> str:
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or not domain or len(email) > MAX_EMAIL_LENGTH or any(c.isspace() for c in email):
        raise Problem(problems.UNEXPECTED_VALUE, "That is not a valid email address.", {"field": "email"})
    return email


# Actors whose session a project manager may end, and the right that allows it.
REVOKE_VERBS = {"field_key": "field_key.delete", "public_link": "public_link.delete"}


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise Problem(problems.UNEXPECTED_VALUE, "displayName must not be empty.", {"field": "displayName"})
    if len(name) > MAX_NAME_LENGTH:
        raise Problem(problems.VALUE_TOO_LONG, details={"field": "displayName", "max": MAX_NAME_LENGTH})
    return name


async def create_session(conn: AsyncConnection, actor_id: int, ttl: timedelta | None) -> SessionView:
    token = cred.new_token()
    values: dict[str, Any] = {
        "token_hash": cred.hash_token(token),
        "actor_id": actor_id,
        "csrf": cred.new_csrf(),
    }
    if ttl is not None:
        values["expires_at"] = func.now() + ttl
    row = await store.insert_session(conn, values)
    return SessionView(
        token=token, csrf=row["csrf"], created_at=row["created_at"], expires_at=row["expires_at"]
    )


class Accounts:
    def __init__(
        self, db: Database, policy: AccessPolicy, authenticator: Authenticator, session_ttl: timedelta
    ) -> None:
        self._db = db
        self._policy = policy
        self._authenticator = authenticator
        self._ttl = session_ttl

    # -- sessions ---------------------------------------------------------------------
    async def login(self, email: str, password: str, client_ip: str | None) -> SessionView:
        actor = await self._authenticator.verify_password(email, password, client_ip)
        async with self._db.transaction() as conn:
            # Each login sweeps the user's expired sessions, so they do not pile up.
            await conn.execute(
                sessions.delete().where(sessions.c.actor_id == actor.id, sessions.c.expires_at <= func.now())
            )
            session = await create_session(conn, actor.id, self._ttl)
            await record_audit(conn, actor, "user.session.create", "actor", actor.id)
        return session

    async def logout(self, actor: Actor, token: str | None = None) -> None:
        """End the current session, or (with `token`) a given one: own, or any with session.end."""
        if actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)
        token_hash = actor.session_hash if token is None else cred.hash_token(token)
        if token_hash is None:
            raise Problem(problems.NOT_FOUND, "This request did not use a session.")
        async with changing(self._db, self._authenticator.actors) as conn:
            row = (
                await conn.execute(
                    select(sessions.c.actor_id, actors.c.type, actors.c.project_id)
                    .join(actors, actors.c.id == sessions.c.actor_id)
                    .where(sessions.c.token_hash == token_hash)
                )
            ).first()
            if row is None:
                raise Problem(problems.NOT_FOUND)
            # Project managers revoke their app users' and public links' access (Central's
            # "revoke access": the actor stays listed, without a token).
            verb = REVOKE_VERBS.get(row.type)
            revokes_device = verb is not None and self._policy.can(actor, verb, row.project_id)
            if row.actor_id != actor.id and not revokes_device:
                self._policy.require(actor, "session.end")
            await conn.execute(sessions.delete().where(sessions.c.token_hash == token_hash))
            if row.type in REVOKE_VERBS:
                await conn.execute(
                    update(actors).where(actors.c.id == row.actor_id).values(token_sealed=None)
                )
            await record_audit(
                conn, actor, "user.session.end", "actor", row.actor_id, project_id=row.project_id
            )

    # -- users ------------------------------------------------------------------------
    async def list_users(self, actor: Actor, q: str | None = None) -> list[ActorView]:
        self._policy.require(actor, "user.list")
        stmt = select(actors).where(actors.c.type == "user", actors.c.deleted_at.is_(None))
        if q:
            stmt = stmt.where(store.search_filter(q))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt.order_by(actors.c.email))).mappings().all()
        return [ActorView.from_row(r) for r in rows]

    async def create_user(
        self, actor: Actor, email: str, password: str | None, display_name: str | None
    ) -> ActorView:
        self._policy.require(actor, "user.create")
        return await self._create_user(actor, email, password, display_name)

    async def _create_user(
        self, actor: Actor | None, email: str, password: str | None, display_name: str | None
    ) -> ActorView:
        email = check_email(email)
        name = check_name(display_name) if display_name is not None else email
        password_hash = None
        if password is not None:
            check_password(password, email)
            password_hash = await anyio.to_thread.run_sync(cred.hash_password, password)
        async with changing(self._db, self._authenticator.actors) as conn:
            if await store.email_taken(conn, email):
                raise Problem(
                    problems.UNIQUENESS_VIOLATION,
                    "A user already exists with that email address.",
                    {"fields": ["email"], "values": [email]},
                )
            row = (
                (
                    await conn.execute(
                        actors.insert()
                        .values(
                            type="user",
                            display_name=name,
                            email=email,
                            password_hash=password_hash,
                            created_by=actor.id if actor and actor.id > 0 else None,
                            created_at=func.now(),
                        )
                        .returning(actors)
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(conn, actor, "user.create", "actor", row["id"], details={"email": email})
        return ActorView.from_row(row)

    async def get_user(self, actor: Actor, user_id: int) -> ActorView:
        if actor.id != user_id:
            self._policy.require(actor, "user.read")
        elif actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)
        async with self._db.read() as conn:
            row = await store.live_actor(conn, user_id)
        if row is None or row["type"] != "user":
            raise Problem(problems.NOT_FOUND)
        return ActorView.from_row(row)

    def sitewide_verbs(self, actor: Actor) -> list[str]:
        return sorted(roles.verbs_on([g for g in actor.grants if g.sitewide]))

    async def update_user(
        self, actor: Actor, user_id: int, email: str | None, display_name: str | None
    ) -> ActorView:
        if actor.id != user_id or actor.type is not ActorType.USER:
            self._policy.require(actor, "user.update")
        changes: dict[str, Any] = {}
        if email is not None:
            changes["email"] = check_email(email)
        if display_name is not None:
            changes["display_name"] = check_name(display_name)
        async with changing(self._db, self._authenticator.actors) as conn:
            row = await store.live_actor(conn, user_id, for_update=True)
            if row is None or row["type"] != "user":
                raise Problem(problems.NOT_FOUND)
            if "email" in changes and await store.email_taken(conn, changes["email"], except_id=user_id):
                raise Problem(
                    problems.UNIQUENESS_VIOLATION,
                    "A user already exists with that email address.",
                    {"fields": ["email"], "values": [changes["email"]]},
                )
            if changes:
                row = (
                    (
                        await conn.execute(
                            update(actors)
                            .where(actors.c.id == user_id)
                            .values(**changes, updated_at=func.now())
                            .returning(actors)
                        )
                    )
                    .mappings()
                    .one()
                )
                await record_audit(conn, actor, "user.update", "actor", user_id, details=changes)
        return ActorView.from_row(row)

    async def change_password(self, actor: Actor, user_id: int, old: str, new: str) -> None:
        """A user changes their own password (the old one is required); other sessions end."""
        if actor.id != user_id:
            self._policy.require(actor, "user.update")
        async with self._db.read() as conn:
            row = await store.live_actor(conn, user_id)
        if row is None or row["type"] != "user":
            raise Problem(problems.NOT_FOUND)
        check_password(new, row["email"])
        # Guessing the old password is throttled like logins: a stolen session must not
        # become a way to learn the password.
        throttle = self._authenticator.throttle
        with throttle.attempt(row["email"], None):
            ok = await anyio.to_thread.run_sync(
                cred.verify_password, row["password_hash"] or cred.dummy_hash(), old
            )
            if not ok or not row["password_hash"]:
                throttle.failed(row["email"], None)
                raise Problem(problems.AUTHENTICATION_FAILED, "The old password is not correct.")
        await self._set_password(actor, user_id, new, keep_session=actor.session_hash)

    async def set_password(self, actor: Actor, email: str, new: str) -> None:
        """Set a password without the old one (administrators and the CLI)."""
        self._policy.require(actor, "user.update")
        async with self._db.read() as conn:
            row = await store.user_by_email(conn, email)
        if row is None:
            raise Problem(problems.NOT_FOUND, "No user with that email address.")
        check_password(new, email)
        await self._set_password(actor, row["id"], new, keep_session=None)

    async def _set_password(self, actor: Actor, user_id: int, new: str, keep_session: str | None) -> None:
        new_hash = await anyio.to_thread.run_sync(cred.hash_password, new)
        async with changing(self._db, self._authenticator.actors) as conn:
            await conn.execute(
                update(actors)
                .where(actors.c.id == user_id)
                .values(password_hash=new_hash, updated_at=func.now())
            )
            ended = await store.end_sessions(conn, user_id, keep=keep_session)
            await record_audit(
                conn, actor, "user.password.change", "actor", user_id, details={"sessionsEnded": ended}
            )

    async def delete_user(self, actor: Actor, user_id: int) -> None:
        self._policy.require(actor, "user.delete")
        async with changing(self._db, self._authenticator.actors) as conn:
            row = await store.live_actor(conn, user_id, for_update=True)
            if row is None or row["type"] != "user":
                raise Problem(problems.NOT_FOUND)
            await conn.execute(update(actors).where(actors.c.id == user_id).values(deleted_at=func.now()))
            await store.end_sessions(conn, user_id)
            await conn.execute(assignments.delete().where(assignments.c.actor_id == user_id))
            await store.keep_an_administrator(conn)
            await record_audit(conn, actor, "user.delete", "actor", user_id)

    async def promote(self, actor: Actor, email: str) -> None:
        """Make an existing user a sitewide administrator (the CLI's `user promote`)."""
        self._policy.require(actor, "assignment.create")
        async with changing(self._db, self._authenticator.actors) as conn:
            row = await store.user_by_email(conn, email)
            if row is None:
                raise Problem(problems.NOT_FOUND, "No user with that email address.")
            await store.insert_assignment(conn, row["id"], roles.ADMIN.id)
            await record_audit(
                conn, actor, "assignment.create", "actor", row["id"], details={"roleId": roles.ADMIN.id}
            )
