"""Queries the users service runs: loading actors with their grants, sessions, assignments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Grant
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.adapters.tables import actors, assignments, sessions

# The actor and all of its grants in one round trip: authentication is on every request.
GRANTS_COLUMN = (
    "coalesce((SELECT json_agg(json_build_array(g.role_id, g.project_id, g.form_id))"
    " FROM users.assignments g WHERE g.actor_id = a.id), '[]'::json) AS grants"
)

_ACTOR_BY_SESSION = text(
    "SELECT a.id, a.type, a.display_name, a.project_id, s.csrf, s.expires_at, "  # noqa: S608 - constant SQL only
    + GRANTS_COLUMN
    + " FROM users.sessions s"
    " JOIN users.actors a ON a.id = s.actor_id"
    " WHERE s.token_hash = :token_hash AND a.deleted_at IS NULL"
    " AND (s.expires_at IS NULL OR s.expires_at > now())"
)

_USER_BY_EMAIL = text(
    "SELECT a.id, a.type, a.display_name, a.project_id, a.password_hash, "  # noqa: S608 - constant SQL only
    + GRANTS_COLUMN
    + " FROM users.actors a"
    " WHERE lower(a.email) = lower(:email) AND a.type = 'user' AND a.deleted_at IS NULL"
)

_ACTOR_BY_ID = text(
    "SELECT a.id, a.type, a.display_name, a.project_id, "  # noqa: S608 - constant SQL only
    + GRANTS_COLUMN
    + " FROM users.actors a"
    " WHERE a.id = :actor_id AND a.deleted_at IS NULL"
)


def grants_of(row: RowMapping) -> tuple[Grant, ...]:
    return tuple(Grant(role_id=r, project_id=p, form_id=f) for r, p, f in row["grants"])


async def actor_by_session(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    return (await conn.execute(_ACTOR_BY_SESSION, {"token_hash": token_hash})).mappings().first()


async def user_by_email(conn: AsyncConnection, email: str) -> RowMapping | None:
    return (await conn.execute(_USER_BY_EMAIL, {"email": email})).mappings().first()


async def actor_with_grants(conn: AsyncConnection, actor_id: int) -> RowMapping | None:
    return (await conn.execute(_ACTOR_BY_ID, {"actor_id": actor_id})).mappings().first()


async def live_actor(conn: AsyncConnection, actor_id: int, *, for_update: bool = False) -> RowMapping | None:
    stmt = select(actors).where(actors.c.id == actor_id, actors.c.deleted_at.is_(None))
    if for_update:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def email_taken(conn: AsyncConnection, email: str, except_id: int | None = None) -> bool:
    stmt = select(actors.c.id).where(
        func.lower(actors.c.email) == email.lower(), actors.c.deleted_at.is_(None)
    )
    if except_id is not None:
        stmt = stmt.where(actors.c.id != except_id)
    return (await conn.execute(stmt.limit(1))).first() is not None


async def insert_session(conn: AsyncConnection, values: dict[str, Any]) -> RowMapping:
    stmt = sessions.insert().values(**values, created_at=func.now()).returning(sessions)
    row: RowMapping = (await conn.execute(stmt)).mappings().one()
    return row


async def upgrade_password_hash(conn: AsyncConnection, actor_id: int, old: str, new: str) -> None:
    """Swap a hash for one of the same password at the current cost, unless it changed meanwhile."""
    await conn.execute(
        update(actors).where(actors.c.id == actor_id, actors.c.password_hash == old).values(password_hash=new)
    )


async def end_sessions(conn: AsyncConnection, actor_id: int, keep: str | None = None) -> int:
    stmt = delete(sessions).where(sessions.c.actor_id == actor_id)
    if keep is not None:
        stmt = stmt.where(sessions.c.token_hash != keep)
    return (await conn.execute(stmt)).rowcount


def scope_filter(project_id: int | None, form_id: str | None) -> Any:
    """Assignments held exactly on this scope."""
    return and_(
        assignments.c.project_id.is_(None) if project_id is None else assignments.c.project_id == project_id,
        assignments.c.form_id.is_(None) if form_id is None else assignments.c.form_id == form_id,
    )


def search_filter(q: str) -> Any:
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(actors.c.email.ilike(pattern, escape="\\"), actors.c.display_name.ilike(pattern, escape="\\"))


async def insert_assignment(
    conn: AsyncConnection,
    actor_id: int,
    role_id: int,
    project_id: int | None = None,
    form_id: str | None = None,
) -> bool:
    """Assign a role on a scope; False when the assignment already existed."""
    stmt = (
        pg_insert(assignments)
        .values(
            actor_id=actor_id, role_id=role_id, project_id=project_id, form_id=form_id, created_at=func.now()
        )
        .on_conflict_do_nothing()
        .returning(assignments.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def keep_an_administrator(conn: AsyncConnection) -> None:
    """Refuse (409.17) a change that left no live sitewide administrator; call it after the change,
    inside the same transaction. Admin assignments are locked first so two concurrent removals
    cannot both pass."""
    await conn.execute(text("LOCK TABLE users.assignments IN SHARE ROW EXCLUSIVE MODE"))
    remaining = (
        await conn.execute(
            text(
                "SELECT count(*) FROM users.assignments g JOIN users.actors a ON a.id = g.actor_id"
                " WHERE g.role_id = 1 AND g.project_id IS NULL AND a.deleted_at IS NULL"
            )
        )
    ).scalar_one()
    if remaining == 0:
        raise Problem(problems.LAST_ADMINISTRATOR)
