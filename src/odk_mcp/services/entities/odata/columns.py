"""The fields of the Entities set and the SQL each one reads.

Properties live in the entity's JSONB `data`; the system fields are columns. Every OData
name maps to one SQL expression, which `$filter`, `$orderby` and `$select` share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, cast
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.services.entities.adapters.tables import entities
from odk_mcp.services.entities.domain.names import odata_name

SYSTEM_FIELDS = ("createdAt", "creatorId", "creatorName", "updates", "updatedAt", "version", "conflict")


@dataclass(frozen=True)
class Columns:
    """OData names of one list's fields, with the property name behind each odataName."""

    properties: dict[str, str]  # odataName -> property name

    @classmethod
    def of(cls, property_names: Sequence[str]) -> Columns:
        return cls({odata_name(name): name for name in property_names})

    def system(self, field: str) -> ColumnElement[object] | None:
        expressions: dict[str, ColumnElement[object]] = {
            "createdAt": entities.c.created_at,
            "updatedAt": entities.c.updated_at,
            "creatorId": entities.c.creator_id,
            "conflict": entities.c.conflict,
            "version": entities.c.version,
            "updates": cast(entities.c.version - 1, Integer),
        }
        return expressions.get(field)

    def field(self, name: str) -> ColumnElement[object] | None:
        """The SQL for a top-level name: `__id`, `label` or a property's odataName."""
        if name == "__id":
            return cast(entities.c.uuid, String)
        if name == "label":
            return entities.c.label
        if name in self.properties:
            value: ColumnElement[object] = entities.c.data[self.properties[name]].astext
            return value
        return None

    def path(self, path: str) -> ColumnElement[object] | None:
        """The SQL for `name` or `__system/field` (the form $select and $orderby use)."""
        if path.startswith("__system/"):
            return self.system(path.removeprefix("__system/"))
        return self.field(path)
