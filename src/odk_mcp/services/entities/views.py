"""What the entities service answers with, shaped like ODK Central's JSON (pyODK's models)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from odk_mcp.kernel.clock import iso
from odk_mcp.services.entities.domain.names import odata_name

Row = Mapping[Any, Any]


@dataclass(frozen=True)
class DatasetView:
    id: int
    project_id: int
    name: str
    approval_required: bool
    owner_only: bool
    revision: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> DatasetView:
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            approval_required=row["approval_required"],
            owner_only=row["owner_only"],
            revision=row["revision"],
            created_at=row["created_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "createdAt": iso(self.created_at),
            "projectId": self.project_id,
            "approvalRequired": self.approval_required,
            "ownerOnly": self.owner_only,
        }


@dataclass(frozen=True)
class PropertyView:
    name: str
    published_at: datetime
    forms: tuple[dict[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "publishedAt": iso(self.published_at),
            "odataName": odata_name(self.name),
            "forms": list(self.forms),
        }


@dataclass(frozen=True)
class DatasetDetail:
    dataset: DatasetView
    properties: tuple[PropertyView, ...]
    source_forms: tuple[dict[str, str], ...] = ()
    linked_forms: tuple[dict[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            **self.dataset.to_json(),
            "sourceForms": list(self.source_forms),
            "linkedForms": list(self.linked_forms),
            "properties": [p.to_json() for p in self.properties],
        }


def version_json(row: Row, current: bool, with_data: bool = True) -> dict[str, Any]:
    """One entity version (`currentVersion`, or an item of `…/versions`)."""
    out: dict[str, Any] = {
        "label": row["label"],
        "current": current,
        "createdAt": iso(row["created_at"]),
        "creatorId": row["creator_id"] or 0,
        "userAgent": row["user_agent"] or "",
        "version": row["version"],
        "baseVersion": row["base_version"],
        "conflictingProperties": row["conflicting_properties"],
        "branchId": row["branch_id"],
        "trunkVersion": row["trunk_version"],
        "branchBaseVersion": row["branch_base_version"],
    }
    if with_data:
        out["data"] = row["data"]
        out["dataReceived"] = row["data_received"]
    return out


def entity_json(entity: Row, current: Row, with_data: bool = True) -> dict[str, Any]:
    return {
        "uuid": entity["uuid"],
        "creatorId": entity["creator_id"] or 0,
        "createdAt": iso(entity["created_at"]),
        "updatedAt": iso(entity["updated_at"]),
        "deletedAt": iso(entity["deleted_at"]),
        "conflict": entity["conflict"],
        "currentVersion": version_json(current, True, with_data),
    }
