"""The form-level sensitivity setting: which fields hold personal data (read and change).

Reading needs the right to read the form; changing needs `form.update`. Paths are checked
against the form's current schema (the published version, or the draft of a form never
published), so a setting always names a real field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms.adapters.tables import field_sensitivity
from odk_mcp.services.forms.catalog import FormCatalog
from odk_mcp.services.forms.domain.schema import FormSchema
from odk_mcp.services.forms.domain.sensitivity import FieldSensitivity, effective

MAX_CHANGES = 2000


@dataclass(frozen=True)
class SensitivityView:
    schema: FormSchema
    fields: tuple[FieldSensitivity, ...]

    @property
    def sensitive_paths(self) -> frozenset[str]:
        return frozenset(f.path for f in self.fields if f.sensitive)

    def to_json(self) -> dict[str, Any]:
        return {
            "xmlFormId": self.schema.xml_form_id,
            "version": self.schema.version,
            "fields": [
                {"path": f.path, "sensitive": f.sensitive, "source": f.source, "defaultReason": f.reason}
                for f in self.fields
            ],
        }


class FormSensitivity:
    def __init__(self, db: Database, authorizer: Authorizer, catalog: FormCatalog) -> None:
        self._db = db
        self._authz = authorizer
        self._catalog = catalog

    async def _definition(self, actor: Actor, project_id: int, xml_form_id: str) -> RowMapping:
        try:
            return await self._catalog.definition(actor, project_id, xml_form_id)
        except Problem as problem:
            if problem.kind is not problems.NOT_FOUND:
                raise
            return await self._catalog.definition(actor, project_id, xml_form_id, draft=True)

    async def get(self, actor: Actor, project_id: int, xml_form_id: str) -> SensitivityView:
        definition = await self._definition(actor, project_id, xml_form_id)
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(field_sensitivity.c.path, field_sensitivity.c.sensitive).where(
                    field_sensitivity.c.form_id == definition["form_id"]
                )
            )
            settings = {r.path: r.sensitive for r in rows}
        schema = FormSchema.from_json(definition["schema"])
        return SensitivityView(schema, tuple(effective(schema, settings)))

    async def update(
        self, actor: Actor, project_id: int, xml_form_id: str, changes: dict[str, bool | None]
    ) -> SensitivityView:
        """Set fields sensitive (true) or not (false), or back to the default (null)."""
        self._authz.require(actor, "form.update", project_id, xml_form_id)
        if len(changes) > MAX_CHANGES:
            raise Problem(problems.VALUE_TOO_LONG, details={"field": "fields", "max": MAX_CHANGES})
        definition = await self._definition(actor, project_id, xml_form_id)
        schema = FormSchema.from_json(definition["schema"])
        known = {f.path for f in effective(schema, {})}
        unknown = sorted(p for p in changes if p not in known)
        if unknown:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                "These paths are not data fields of the form.",
                {"field": "fields", "unknown": unknown[:50]},
            )
        form_id = definition["form_id"]
        async with self._db.transaction() as conn:
            for path, value in changes.items():
                if value is None:
                    await conn.execute(
                        delete(field_sensitivity).where(
                            field_sensitivity.c.form_id == form_id, field_sensitivity.c.path == path
                        )
                    )
                    continue
                stmt = pg_insert(field_sensitivity).values(
                    form_id=form_id,
                    path=path,
                    sensitive=value,
                    updated_by=actor.id if actor.id > 0 else None,
                    updated_at=func.now(),
                )
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[field_sensitivity.c.form_id, field_sensitivity.c.path],
                        set_={
                            "sensitive": value,
                            "updated_by": stmt.excluded.updated_by,
                            "updated_at": func.now(),
                        },
                    )
                )
            await record_audit(
                conn,
                actor,
                "form.update.sensitivity",
                "form",
                xml_form_id,
                project_id=project_id,
                details={"fields": changes},
            )
        return await self.get(actor, project_id, xml_form_id)
