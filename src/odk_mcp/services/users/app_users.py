"""App users (ODK Central's "field keys"): project-bound device identities for ODK Collect.

An app user authenticates with a long-lived token used as the URL prefix
`/v1/key/{token}/…`. The token is looked up by its hash; a sealed (encrypted) copy lets the
listing show each active app user's token again, as ODK Central does (pyODK and the QR codes
for Collect rely on it). Revoking the app user's session clears the sealed copy.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import record_audit
from odk_mcp.infra.sealing import Sealer
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.access import AccessPolicy
from odk_mcp.services.users.accounts import check_name, create_session
from odk_mcp.services.users.actor_cache import ActorCache, changing
from odk_mcp.services.users.adapters import store
from odk_mcp.services.users.adapters.tables import actors, assignments
from odk_mcp.services.users.ports import Catalogue
from odk_mcp.services.users.views import ActorView


class TokenActors:
    """What the facades of project-bound token actors (app users, public links) share."""

    def __init__(
        self,
        db: Database,
        policy: AccessPolicy,
        catalogue: Catalogue,
        sealer: Sealer,
        actors: ActorCache | None = None,
    ) -> None:
        self._db = db
        self._actors = actors if actors is not None else ActorCache(0)
        self._policy = policy
        self._catalogue = catalogue
        self._sealer = sealer


class AppUsers(TokenActors):
    async def _check(self, actor: Actor, verb: str, project_id: int) -> None:
        self._policy.require(actor, verb, project_id)
        if not await self._catalogue.project_exists(project_id):
            raise Problem(problems.NOT_FOUND)

    async def list_app_users(self, actor: Actor, project_id: int) -> list[ActorView]:
        await self._check(actor, "field_key.list", project_id)
        stmt = (
            select(actors)
            .where(
                actors.c.type == "field_key", actors.c.project_id == project_id, actors.c.deleted_at.is_(None)
            )
            .order_by(actors.c.created_at.desc(), actors.c.id.desc())
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [ActorView.from_row(r, token=self._token_of(r["token_sealed"])) for r in rows]

    def _token_of(self, sealed: str | None) -> str | None:
        return self._sealer.unseal(sealed) if sealed else None

    async def create(self, actor: Actor, project_id: int, display_name: str) -> ActorView:
        await self._check(actor, "field_key.create", project_id)
        name = check_name(display_name)
        async with self._db.transaction() as conn:
            row, token = await create_token_actor(conn, actor, "field_key", name, project_id, self._sealer)
            await record_audit(conn, actor, "field_key.create", "actor", row["id"], project_id=project_id)
        return ActorView.from_row(row, token=token)

    async def delete(self, actor: Actor, project_id: int, app_user_id: int) -> None:
        await self._check(actor, "field_key.delete", project_id)
        async with changing(self._db, self._actors) as conn:
            row = await store.live_actor(conn, app_user_id, for_update=True)
            if row is None or row["type"] != "field_key" or row["project_id"] != project_id:
                raise Problem(problems.NOT_FOUND)
            await retire_token_actor(conn, app_user_id)
            await record_audit(conn, actor, "field_key.delete", "actor", app_user_id, project_id=project_id)


async def create_token_actor(
    conn: AsyncConnection, creator: Actor, actor_type: str, name: str, project_id: int, sealer: Sealer
) -> tuple[RowMapping, str]:
    """A project-bound actor (app user or public link) with a session that never expires and
    a sealed copy of its token; returns the actor row and the token."""
    row = (
        (
            await conn.execute(
                actors.insert()
                .values(
                    type=actor_type,
                    display_name=name,
                    project_id=project_id,
                    created_by=creator.id if creator.id > 0 else None,
                    created_at=func.now(),
                )
                .returning(actors)
            )
        )
        .mappings()
        .one()
    )
    session = await create_session(conn, row["id"], ttl=None)
    await conn.execute(
        update(actors).where(actors.c.id == row["id"]).values(token_sealed=sealer.seal(session.token))
    )
    return row, session.token


async def retire_token_actor(conn: AsyncConnection, actor_id: int) -> None:
    """Delete such an actor: its token stops working and its assignments go."""
    await conn.execute(
        update(actors).where(actors.c.id == actor_id).values(deleted_at=func.now(), token_sealed=None)
    )
    await store.end_sessions(conn, actor_id)
    await conn.execute(assignments.delete().where(assignments.c.actor_id == actor_id))
