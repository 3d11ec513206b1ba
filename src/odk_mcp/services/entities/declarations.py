"""Forms that feed entity lists: on `form.published`, read the form's entity blocks (the
top-level one and those in repeats), create their lists and properties when missing, and
remember which fields save to which properties of which list.

A consumer of the event pipeline: it runs in the delivery's transaction and is idempotent
(a definition is recorded once, by id). A broken entity block cannot refuse the upload any
more (the form is already published): it is recorded with the definition (`problem`) and in
the audit log (`entity.form.error`), and submissions of that definition change no entity.
"""

from __future__ import annotations

import structlog
from sqlalchemy import func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import Event, emit, record_audit
from odk_mcp.kernel.safe_xml import UnsafeXml, parse_xml
from odk_mcp.services.entities.adapters import store
from odk_mcp.services.entities.adapters.tables import datasets, form_defs, properties
from odk_mcp.services.entities.domain.xform import (
    EntityDeclaration,
    InvalidEntityForm,
    read_entity_declarations,
)
from odk_mcp.services.forms import FormLookup

log = structlog.get_logger("odk_mcp.entities")

MAX_XFORM_BYTES = 100_000_000


class InvalidDeclaration(ValueError):
    pass


class FormDeclarations:
    def __init__(self, lookup: FormLookup) -> None:
        self._lookup = lookup

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        payload = event.payload
        def_id = int(payload["formDefId"])
        known = await conn.execute(select(form_defs.c.form_def_id).where(form_defs.c.form_def_id == def_id))
        if known.first() is not None:
            return
        xml = await self._lookup.definition_xml(def_id)
        if xml is None:
            return
        project_id = int(payload["projectId"])
        xml_form_id = str(payload["xmlFormId"])
        row = {"form_def_id": def_id, "project_id": project_id, "xml_form_id": xml_form_id}
        try:
            declarations = read_entity_declarations(parse_xml(xml, MAX_XFORM_BYTES))
            if not declarations:
                return
            # All the form's lists and properties, or none of them.
            async with conn.begin_nested():
                made = [(d, await self._dataset(conn, project_id, d)) for d in declarations]
        except (InvalidEntityForm, InvalidDeclaration, UnsafeXml) as exc:
            await conn.execute(
                insert(form_defs).values(
                    **row, entity_path="", problem=str(exc)[:1000], created_at=func.now()
                )
            )
            await record_audit(
                conn,
                None,
                "entity.form.error",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"formDefId": def_id, "code": 400.25, "reason": str(exc)[:1000]},
            )
            log.warning("entity_form_invalid", form_def_id=def_id, error_type=type(exc).__name__)
            return
        await conn.execute(
            insert(form_defs).values(
                [
                    {
                        **row,
                        "entity_path": declaration.path,
                        "form_name": declaration.title,
                        "dataset_id": dataset["id"],
                        "actions": list(declaration.actions),
                        "spec_version": declaration.spec_version,
                        "saveto": [list(pair) for pair in declaration.saveto],
                        "created_at": func.now(),
                    }
                    for declaration, dataset in made
                ]
            )
        )

    async def _dataset(
        self, conn: AsyncConnection, project_id: int, declaration: EntityDeclaration
    ) -> RowMapping:
        """The list the form names (created if missing), with every property it saves to."""
        name = declaration.dataset
        stmt = (
            select(datasets)
            .where(datasets.c.project_id == project_id, func.lower(datasets.c.name) == name.lower())
            .with_for_update()
        )
        dataset = (await conn.execute(stmt)).mappings().first()
        if dataset is not None and dataset["name"] != name:
            raise InvalidDeclaration(
                f"A dataset named '{dataset['name']}' exists and the form names '{name}'"
                " (capitalization differs)."
            )
        if dataset is None:
            dataset = (
                (
                    await conn.execute(
                        insert(datasets)
                        .values(
                            project_id=project_id,
                            name=name,
                            approval_required=False,
                            owner_only=False,
                            revision=0,
                            live_entities=0,
                            created_at=func.now(),
                        )
                        .returning(datasets)
                    )
                )
                .mappings()
                .one()
            )
            await record_audit(
                conn,
                None,
                "dataset.create",
                "dataset",
                name,
                project_id=project_id,
                details={"fromForm": True},
            )
            await emit(
                conn, "dataset.created", {"projectId": project_id, "name": name, "datasetId": dataset["id"]}
            )
        existing = {p.lower(): p for p in await store.property_names(conn, dataset["id"])}
        added = []
        for _, prop in declaration.saveto:
            if prop.lower() in existing:
                if existing[prop.lower()] != prop:
                    raise InvalidDeclaration(
                        "This form attempts to create new Entity properties that match with existing ones"
                        " except for capitalization."
                    )
                continue
            added.append(prop)
            existing[prop.lower()] = prop
        if added:
            await conn.execute(insert(properties), [{"dataset_id": dataset["id"], "name": p} for p in added])
            await store.bump(conn, dataset["id"])
            for prop in added:
                await emit(
                    conn,
                    "dataset.property.created",
                    {"projectId": project_id, "name": name, "datasetId": dataset["id"], "property": prop},
                )
        return dataset
