"""Entity lists (Central's "datasets"): creating, reading, changing them and their properties."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import emit, record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.clock import iso
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.adapters import store
from odk_mcp.services.entities.adapters.tables import datasets, entities, form_defs, properties
from odk_mcp.services.entities.domain.names import valid_dataset_name, valid_property_name
from odk_mcp.services.entities.ports import ProjectDirectory
from odk_mcp.services.entities.processing import SubmissionEntities
from odk_mcp.services.entities.views import DatasetDetail, DatasetView, PropertyView
from odk_mcp.services.forms import FormLookup


def _name_problem(field: str, value: Any, what: str) -> Problem:
    return Problem(
        problems.UNEXPECTED_VALUE,
        f"Unexpected {field} value {str(value)[:100]}; this is not a valid {what} name.",
        {"field": field, "value": value if isinstance(value, str) else None},
    )


class Datasets:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        projects: ProjectDirectory,
        lookup: FormLookup,
        processor: SubmissionEntities,
    ) -> None:
        self._db = db
        self._authz = authorizer
        self._projects = projects
        self._lookup = lookup
        self._processor = processor

    async def _project(self, actor: Actor, verb: str, project_id: int) -> None:
        self._authz.require(actor, verb, project_id)
        if not await self._projects.project_exists(project_id):
            raise Problem(problems.NOT_FOUND)

    async def list_datasets(
        self, actor: Actor, project_id: int, extended: bool = False
    ) -> list[dict[str, Any]]:
        """The project's lists; `extended` adds Central's `entities`, `lastEntity`, `conflicts`."""
        await self._project(actor, "dataset.list", project_id)
        stmt = select(datasets).where(datasets.c.project_id == project_id).order_by(datasets.c.name)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
            out = [DatasetView.from_row(r).to_json() for r in rows]
            if extended:
                for row, item in zip(rows, out, strict=True):
                    item.update(await _activity(conn, row))
        return out

    async def create(
        self,
        actor: Actor,
        project_id: int,
        name: Any,
        approval_required: bool,
        property_names: list[Any],
    ) -> DatasetDetail:
        if not isinstance(name, str) or not valid_dataset_name(name):
            raise _name_problem("name", name, "dataset")
        for prop in property_names:
            if not isinstance(prop, str) or not valid_property_name(prop):
                raise _name_problem("properties", prop, "property")
        if len({p.lower() for p in property_names}) != len(property_names):
            raise Problem(problems.UNEXPECTED_VALUE, "Property names repeat.", {"field": "properties"})
        await self._project(actor, "dataset.create", project_id)
        async with self._db.transaction() as conn:
            taken = (
                await conn.execute(
                    select(datasets.c.name).where(
                        datasets.c.project_id == project_id, func.lower(datasets.c.name) == name.lower()
                    )
                )
            ).scalar_one_or_none()
            if taken is not None:
                raise Problem(
                    problems.UNIQUENESS_VIOLATION,
                    f"An entity list named {taken} already exists in this project"
                    + (" (names differ only in case)." if taken != name else "."),
                    {"fields": ["name", "projectId"], "values": [name, project_id]},
                )
            row = (
                (
                    await conn.execute(
                        insert(datasets)
                        .values(
                            project_id=project_id,
                            name=name,
                            approval_required=approval_required,
                            owner_only=False,
                            revision=0,
                            live_entities=0,
                            created_by=actor.id if actor.id > 0 else None,
                            created_at=func.now(),
                        )
                        .returning(datasets)
                    )
                )
                .mappings()
                .one()
            )
            if property_names:
                await conn.execute(
                    insert(properties),
                    [{"dataset_id": row["id"], "name": p} for p in property_names],
                )
            await record_audit(
                conn,
                actor,
                "dataset.create",
                "dataset",
                name,
                project_id=project_id,
                details={"approvalRequired": approval_required, "properties": property_names},
            )
            await emit(
                conn, "dataset.created", {"projectId": project_id, "name": name, "datasetId": row["id"]}
            )
            return await self._detail(conn, project_id, name)

    async def get(self, actor: Actor, project_id: int, name: str) -> DatasetDetail:
        await self._project(actor, "dataset.read", project_id)
        async with self._db.read() as conn:
            return await self._detail(conn, project_id, name)

    async def _detail(self, conn: AsyncConnection, project_id: int, name: str) -> DatasetDetail:
        row = await store.dataset(conn, project_id, name)
        stmt = select(properties).where(properties.c.dataset_id == row["id"]).order_by(properties.c.id)
        props = (await conn.execute(stmt)).mappings().all()
        sources = await _source_forms(conn, row["id"])
        feeding: dict[str, list[dict[str, str]]] = {}
        for form in sources:
            named = {"xmlFormId": form["form"]["xmlFormId"], "name": form["form"]["name"]}
            for _, prop in form["saveto"]:
                if named not in feeding.setdefault(prop, []):
                    feeding[prop].append(named)
        return DatasetDetail(
            dataset=DatasetView.from_row(row),
            properties=tuple(
                PropertyView(p["name"], p["published_at"], tuple(feeding.get(p["name"], []))) for p in props
            ),
            source_forms=tuple(form["form"] for form in sources),
            linked_forms=tuple(await self._lookup.forms_using_file(project_id, f"{name}.csv")),
        )

    async def update(
        self,
        actor: Actor,
        project_id: int,
        name: str,
        approval_required: bool | None,
        convert: bool | None,
        owner_only: bool | None = None,
    ) -> DatasetDetail:
        await self._project(actor, "dataset.update", project_id)
        async with self._db.transaction() as conn:
            row = await store.dataset(conn, project_id, name, lock=True)
            converted = 0
            if row["approval_required"] and approval_required is False:
                pending = await self._processor.count_pending(conn, row["id"])
                if pending and convert is None:
                    raise Problem(problems.PENDING_SUBMISSIONS, details={"count": pending})
                converted = await self._processor.convert_pending(conn, row, apply=bool(convert))
            changes: dict[str, Any] = {}
            if approval_required is not None and approval_required != row["approval_required"]:
                changes["approval_required"] = approval_required
            if owner_only is not None and owner_only != row["owner_only"]:
                changes["owner_only"] = owner_only
                # What collectors download changes: their manifest hash must change too.
                await store.bump(conn, row["id"])
            if changes:
                await conn.execute(
                    update(datasets)
                    .where(datasets.c.id == row["id"])
                    .values(**changes, updated_at=func.now())
                )
                details: dict[str, Any] = {}
                if "approval_required" in changes:
                    details.update(approvalRequired=approval_required, convert=convert, pending=converted)
                if "owner_only" in changes:
                    details["ownerOnly"] = owner_only
                await record_audit(
                    conn, actor, "dataset.update", "dataset", name, project_id=project_id, details=details
                )
                await emit(
                    conn,
                    "dataset.updated",
                    {
                        "projectId": project_id,
                        "name": name,
                        "datasetId": row["id"],
                        "approvalRequired": changes.get("approval_required", row["approval_required"]),
                        "ownerOnly": changes.get("owner_only", row["owner_only"]),
                        "convert": bool(convert),
                    },
                )
            return await self._detail(conn, project_id, name)

    async def add_property(self, actor: Actor, project_id: int, name: str, property_name: Any) -> None:
        await self._project(actor, "dataset.update", project_id)
        if not isinstance(property_name, str) or not valid_property_name(property_name):
            raise _name_problem("name", property_name, "property")
        async with self._db.transaction() as conn:
            row = await store.dataset(conn, project_id, name, lock=True)
            existing = await store.property_names(conn, row["id"])
            clash = [p for p in existing if p.lower() == property_name.lower()]
            if clash:
                raise Problem(
                    problems.UNIQUENESS_VIOLATION,
                    f"The entity list already has a property named {clash[0]}.",
                    {"fields": ["name", "datasetId"], "values": [property_name, name]},
                )
            await conn.execute(
                insert(properties).values(dataset_id=row["id"], name=property_name, published_at=func.now())
            )
            await store.bump(conn, row["id"])
            await record_audit(
                conn,
                actor,
                "dataset.update",
                "dataset",
                name,
                project_id=project_id,
                details={"propertyCreated": property_name},
            )
            await emit(
                conn,
                "dataset.property.created",
                {"projectId": project_id, "name": name, "datasetId": row["id"], "property": property_name},
            )


async def _source_forms(conn: AsyncConnection, dataset_id: int) -> list[dict[str, Any]]:
    """Forms whose newest published definition feeds the list, with the fields each saves; a
    form feeding it from a repeat carries Central's `repeatPath` (`/members/person/`)."""
    newest = (
        select(
            form_defs.c.project_id, form_defs.c.xml_form_id, func.max(form_defs.c.form_def_id).label("def_id")
        )
        .group_by(form_defs.c.project_id, form_defs.c.xml_form_id)
        .subquery()
    )
    stmt = (
        select(form_defs.c.xml_form_id, form_defs.c.form_name, form_defs.c.saveto, form_defs.c.entity_path)
        .join(newest, newest.c.def_id == form_defs.c.form_def_id)
        .where(form_defs.c.dataset_id == dataset_id)
        .order_by(form_defs.c.xml_form_id, form_defs.c.entity_path)
    )
    out: dict[str, dict[str, Any]] = {}
    for r in (await conn.execute(stmt)).all():
        if r.xml_form_id in out:  # one form declaring the list in several places
            out[r.xml_form_id]["saveto"] = out[r.xml_form_id]["saveto"] + r.saveto
            continue
        form: dict[str, str] = {"xmlFormId": r.xml_form_id, "name": r.form_name or r.xml_form_id}
        if r.entity_path:
            form["repeatPath"] = f"/{r.entity_path}/"
        out[r.xml_form_id] = {"form": form, "saveto": r.saveto}
    return list(out.values())


async def _activity(conn: AsyncConnection, dataset: RowMapping) -> dict[str, Any]:
    """Central's extended list metadata: live entities, the last change, open conflicts."""
    live = (entities.c.dataset_id == dataset["id"]) & entities.c.deleted_at.is_(None)
    stmt = select(
        func.max(func.greatest(entities.c.created_at, entities.c.updated_at)),
        func.count().filter(entities.c.conflict.is_not(None)),
    ).where(live)
    last, conflicts = (await conn.execute(stmt)).one()
    return {"entities": dataset["live_entities"], "lastEntity": iso(last), "conflicts": int(conflicts)}
