"""What the forms service hands out, with JSON shapes matching ODK Central (pyODK's models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from odk_mcp.kernel.clock import iso


@dataclass(frozen=True)
class FormView:
    id: int
    project_id: int
    xml_form_id: str
    state: str
    name: str | None
    version: str | None
    hash: str | None
    key_id: int | None
    def_id: int | None
    created_at: datetime
    updated_at: datetime | None
    published_at: datetime | None
    deleted_at: datetime | None
    draft_token: str | None = None  # only in the response that created a draft

    @classmethod
    def from_row(cls, row: RowMapping, draft_token: str | None = None) -> FormView:
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            xml_form_id=row["xml_form_id"],
            state=row["state"],
            name=row["name"],
            version=row["version"],
            hash=row["md5"],
            key_id=row["key_id"],
            def_id=row["def_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            published_at=row["published_at"],
            deleted_at=row["deleted_at"],
            draft_token=draft_token,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "projectId": self.project_id,
            "xmlFormId": self.xml_form_id,
            "state": self.state,
            "enketoId": None,
            "enketoOnceId": None,
            "name": self.name,
            "version": self.version or "",
            "hash": self.hash,
            "keyId": self.key_id,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "publishedAt": iso(self.published_at),
        }
        if self.deleted_at is not None:
            body["id"] = self.id
            body["deletedAt"] = iso(self.deleted_at)
        if self.draft_token is not None:
            body["draftToken"] = self.draft_token
        return body


@dataclass(frozen=True)
class AttachmentView:
    name: str
    type: str
    md5: str | None
    sha256: str | None
    size: int | None
    content_type: str | None
    updated_at: datetime | None
    dataset: bool = False  # served from the project's entity list of that name

    @classmethod
    def from_row(cls, row: RowMapping) -> AttachmentView:
        return cls(
            name=row["name"],
            type=row["type"],
            md5=row["blob_md5"],
            sha256=row["blob_sha256"],
            size=row["blob_size"],
            content_type=row["content_type"],
            updated_at=row["updated_at"],
        )

    @property
    def exists(self) -> bool:
        return self.sha256 is not None or self.dataset

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "exists": self.exists,
            "blobExists": self.sha256 is not None,
            "datasetExists": self.dataset,
            "hash": self.md5,
            "updatedAt": iso(self.updated_at),
        }


@dataclass(frozen=True)
class ConversionView:
    id: str
    project_id: int
    status: str
    xml_form_id: str | None
    problem: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> ConversionView:
        return cls(
            id=str(row["id"]),
            project_id=row["project_id"],
            status=row["status"],
            xml_form_id=row["xml_form_id"],
            problem=row["problem"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "projectId": self.project_id,
            "status": self.status,
            "xmlFormId": self.xml_form_id,
            "problem": self.problem,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }
