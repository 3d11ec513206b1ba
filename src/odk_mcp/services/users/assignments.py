"""Roles and role assignments: sitewide, per project, per form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.access import AccessPolicy
from odk_mcp.services.users.actor_cache import ActorCache, changing
from odk_mcp.services.users.adapters import store
from odk_mcp.services.users.adapters.tables import actors, assignments
from odk_mcp.services.users.domain import roles
from odk_mcp.services.users.ports import Catalogue
from odk_mcp.services.users.views import ActorView


@dataclass(frozen=True)
class Scope:
    """Where an assignment holds: sitewide, a project, or one form of a project."""

    project_id: int | None = None
    form_id: str | None = None

    @property
    def kind(self) -> str:
        if self.project_id is None:
            return "site"
        return "project" if self.form_id is None else "form"


def _role(key: str) -> roles.Role:
    role = roles.find_role(key)
    if role is None:
        raise Problem(problems.NOT_FOUND, "No such role.")
    return role


class Assignments:
    def __init__(
        self, db: Database, policy: AccessPolicy, catalogue: Catalogue, actors: ActorCache | None = None
    ) -> None:
        self._db = db
        self._actors = actors if actors is not None else ActorCache(0)
        self._policy = policy
        self._catalogue = catalogue

    # -- roles ------------------------------------------------------------------------
    def list_roles(self, actor: Actor) -> tuple[roles.Role, ...]:
        self._require_authenticated(actor)
        return roles.ROLES

    def get_role(self, actor: Actor, key: str) -> roles.Role:
        self._require_authenticated(actor)
        return _role(key)

    @staticmethod
    def _require_authenticated(actor: Actor) -> None:
        if actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)

    # -- assignments ------------------------------------------------------------------
    async def _check_scope(self, actor: Actor, verb: str, scope: Scope) -> None:
        """Authorize, then make sure the scope exists (404 rather than leaking via 403)."""
        self._policy.require(actor, verb, scope.project_id, scope.form_id)
        if scope.project_id is not None and not await self._catalogue.project_exists(scope.project_id):
            raise Problem(problems.NOT_FOUND)
        if (
            scope.form_id is not None
            and scope.project_id is not None
            and not await self._catalogue.form_exists(scope.project_id, scope.form_id)
        ):
            raise Problem(problems.NOT_FOUND)

    async def list_assignments(
        self, actor: Actor, scope: Scope, role_key: str | None = None
    ) -> list[dict[str, Any]]:
        """`[{actorId, roleId}]` on the scope, optionally only for one role."""
        await self._check_scope(actor, "assignment.list", scope)
        stmt = (
            select(assignments.c.actor_id, assignments.c.role_id)
            .join(actors, actors.c.id == assignments.c.actor_id)
            .where(store.scope_filter(scope.project_id, scope.form_id), actors.c.deleted_at.is_(None))
            .order_by(assignments.c.role_id, assignments.c.actor_id)
        )
        if role_key is not None:
            stmt = stmt.where(assignments.c.role_id == _role(role_key).id)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [{"actorId": r.actor_id, "roleId": r.role_id} for r in rows]

    async def list_actors(self, actor: Actor, scope: Scope, role_key: str) -> list[ActorView]:
        """The actors holding one role on the scope (`GET …/assignments/{role}`)."""
        await self._check_scope(actor, "assignment.list", scope)
        role = _role(role_key)
        stmt = (
            select(actors)
            .join(assignments, actors.c.id == assignments.c.actor_id)
            .where(
                store.scope_filter(scope.project_id, scope.form_id),
                assignments.c.role_id == role.id,
                actors.c.deleted_at.is_(None),
            )
            .order_by(actors.c.id)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [ActorView.from_row(r) for r in rows]

    async def assign(self, actor: Actor, scope: Scope, role_key: str, actor_id: int) -> None:
        await self._check_scope(actor, "assignment.create", scope)
        role = _role(role_key)
        if scope.kind not in role.scopes:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                f"The role {role.system} cannot be assigned on a {scope.kind}.",
                {"field": "roleId", "value": role.id, "allowedScopes": sorted(role.scopes)},
            )
        async with changing(self._db, self._actors) as conn:
            target = await store.live_actor(conn, actor_id)
            if target is None:
                raise Problem(problems.NOT_FOUND, "No such actor.")
            self._check_target(target["type"], target["project_id"], role, scope)
            created = await store.insert_assignment(conn, actor_id, role.id, scope.project_id, scope.form_id)
            if not created:
                raise Problem(
                    problems.UNIQUENESS_VIOLATION,
                    "That actor already has that role here.",
                    {"fields": ["actorId", "roleId"], "values": [actor_id, role.id]},
                )
            await _audit(conn, actor, "assignment.create", scope, actor_id, role.id)

    @staticmethod
    def _check_target(actor_type: str, home_project: int | None, role: roles.Role, scope: Scope) -> None:
        """Web users take user roles; app users and public links only their own role in their project."""
        wanted = {"field_key": roles.APP_USER.id, "public_link": roles.PUBLIC_LINK.id}.get(actor_type)
        if wanted is None:
            if role.id in (roles.APP_USER.id, roles.PUBLIC_LINK.id):
                raise Problem(problems.UNEXPECTED_VALUE, f"A web user cannot hold the {role.system} role.")
            return
        if role.id != wanted or home_project != scope.project_id:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                f"This {actor_type} can only hold the {roles.find_role(wanted).system} role "  # type: ignore[union-attr]
                "on forms of its own project.",
            )

    async def unassign(self, actor: Actor, scope: Scope, role_key: str, actor_id: int) -> None:
        await self._check_scope(actor, "assignment.delete", scope)
        role = _role(role_key)
        async with changing(self._db, self._actors) as conn:
            result = await conn.execute(
                assignments.delete().where(
                    store.scope_filter(scope.project_id, scope.form_id),
                    assignments.c.role_id == role.id,
                    assignments.c.actor_id == actor_id,
                )
            )
            if result.rowcount == 0:
                raise Problem(problems.NOT_FOUND)
            if role.id == roles.ADMIN.id and scope.kind == "site":
                await store.keep_an_administrator(conn)
            await _audit(conn, actor, "assignment.delete", scope, actor_id, role.id)


async def _audit(
    conn: AsyncConnection, actor: Actor, action: str, scope: Scope, actor_id: int, role_id: int
) -> None:
    details: dict[str, Any] = {"roleId": role_id, "scope": scope.kind}
    if scope.form_id is not None:
        details["formId"] = scope.form_id
    await record_audit(conn, actor, action, "actor", actor_id, project_id=scope.project_id, details=details)
