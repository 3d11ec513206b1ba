"""Projects: the containers of forms, app users and assignments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping

from odk_mcp.events import emit, record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms.adapters.tables import forms, projects
from odk_mcp.services.forms.lookup import FormLookup

MAX_NAME_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 20_000


@dataclass(frozen=True)
class ProjectView:
    id: int
    name: str
    description: str | None
    archived: bool
    key_id: int | None
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> ProjectView:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "archived": self.archived,
            "keyId": self.key_id,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "deletedAt": iso(self.deleted_at),
        }


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise Problem(problems.UNEXPECTED_VALUE, "A project needs a name.", {"field": "name"})
    if len(name) > MAX_NAME_LENGTH:
        raise Problem(problems.VALUE_TOO_LONG, details={"field": "name", "max": MAX_NAME_LENGTH})
    return name


def _check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise Problem(
            problems.VALUE_TOO_LONG, details={"field": "description", "max": MAX_DESCRIPTION_LENGTH}
        )
    return description


class Projects:
    def __init__(self, db: Database, authorizer: Authorizer, lookup: FormLookup | None = None) -> None:
        self._db = db
        self._lookup = lookup if lookup is not None else FormLookup(db)
        self._authz = authorizer

    async def list_projects(self, actor: Actor, include_archived: bool = True) -> list[ProjectView]:
        """The projects the actor may read (all of them for administrators)."""
        if actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)
        visible = self._authz.projects_with(actor, "project.read")
        stmt = (
            select(projects).where(projects.c.deleted_at.is_(None)).order_by(projects.c.name, projects.c.id)
        )
        if visible is not None:
            stmt = stmt.where(projects.c.id.in_(sorted(visible)))
        if not include_archived:
            stmt = stmt.where(projects.c.archived.is_(False))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [ProjectView.from_row(r) for r in rows]

    async def create(self, actor: Actor, name: str, description: str | None) -> ProjectView:
        self._authz.require(actor, "project.create")
        values = {"name": _check_name(name), "description": _check_description(description)}
        async with self._db.transaction() as conn:
            row = (
                (
                    await conn.execute(
                        projects.insert()
                        .values(**values, archived=False, created_at=func.now())
                        .returning(projects)
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(conn, actor, "project.create", "project", row["id"], project_id=row["id"])
            await emit(conn, "project.created", {"projectId": row["id"]})
        return ProjectView.from_row(row)

    async def get(self, actor: Actor, project_id: int) -> ProjectView:
        self._authz.require(actor, "project.read", project_id)
        async with self._db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(projects).where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise Problem(problems.NOT_FOUND)
        return ProjectView.from_row(row)

    async def update(self, actor: Actor, project_id: int, changes: dict[str, Any]) -> ProjectView:
        """Change name, description or archived (only the keys present)."""
        self._authz.require(actor, "project.update", project_id)
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = _check_name(changes["name"])
        if "description" in changes:
            values["description"] = _check_description(changes["description"])
        if "archived" in changes:
            values["archived"] = bool(changes["archived"])
        async with self._lookup.changing() as conn:
            stmt = (
                update(projects)
                .where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
                .values(**values, updated_at=func.now())
                .returning(projects)
            )
            row = (await conn.execute(stmt)).mappings().first()
            if row is None:
                raise Problem(problems.NOT_FOUND)
            await record_audit(
                conn, actor, "project.update", "project", project_id, project_id=project_id, details=values
            )
        return ProjectView.from_row(row)

    async def delete(self, actor: Actor, project_id: int) -> None:
        """Soft delete: the project disappears from every listing; its data stays stored."""
        self._authz.require(actor, "project.delete", project_id)
        async with self._lookup.changing() as conn:
            stmt = (
                update(projects)
                .where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
                .values(deleted_at=func.now())
                .returning(projects.c.id)
            )
            if (await conn.execute(stmt)).first() is None:
                raise Problem(problems.NOT_FOUND)
            await record_audit(conn, actor, "project.delete", "project", project_id, project_id=project_id)
            await emit(conn, "project.deleted", {"projectId": project_id})


class FormCatalogue:
    """Existence checks other services need (implements the users service's Catalogue port)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def project_exists(self, project_id: int) -> bool:
        stmt = select(projects.c.id).where(projects.c.id == project_id, projects.c.deleted_at.is_(None))
        async with self._db.read() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def form_exists(self, project_id: int, xml_form_id: str) -> bool:
        stmt = (
            select(forms.c.id)
            .join(projects, projects.c.id == forms.c.project_id)
            .where(
                forms.c.project_id == project_id,
                forms.c.xml_form_id == xml_form_id,
                forms.c.deleted_at.is_(None),
                projects.c.deleted_at.is_(None),
            )
        )
        async with self._db.read() as conn:
            return (await conn.execute(stmt)).first() is not None
