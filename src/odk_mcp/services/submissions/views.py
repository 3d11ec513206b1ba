"""What the submissions service hands out, in ODK Central's JSON shapes (pyODK's models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from odk_mcp.kernel.clock import iso


@dataclass(frozen=True)
class SubmissionView:
    id: int
    instance_id: str
    xml_form_id: str
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    review_state: str | None
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None
    current_instance_id: str
    instance_name: str | None
    version_created_at: datetime
    form_version: str
    flags: list[dict[str, str]]

    @classmethod
    def from_row(cls, row: RowMapping) -> SubmissionView:
        return cls(
            id=row["id"],
            instance_id=row["instance_id"],
            xml_form_id=row["xml_form_id"],
            submitter_id=row["submitter_id"],
            device_id=row["device_id"],
            user_agent=row["user_agent"],
            review_state=row["review_state"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            current_instance_id=row["current_instance_id"],
            instance_name=row["instance_name"],
            version_created_at=row["version_created_at"],
            form_version=row["form_version"],
            flags=row["flags"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id,
            "submitterId": self.submitter_id,
            "deviceId": self.device_id,
            "userAgent": self.user_agent,
            "reviewState": self.review_state,
            "instanceName": self.instance_name,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "deletedAt": iso(self.deleted_at),
            "currentVersion": {
                "instanceId": self.current_instance_id,
                "instanceName": self.instance_name,
                "submitterId": self.submitter_id,
                "deviceId": self.device_id,
                "userAgent": self.user_agent,
                "createdAt": iso(self.version_created_at),
                "current": True,
                "formVersion": self.form_version,
            },
            "flags": self.flags,
        }


@dataclass(frozen=True)
class VersionView:
    instance_id: str
    instance_name: str | None
    submitter_id: int | None
    device_id: str | None
    user_agent: str | None
    created_at: datetime
    current: bool
    form_version: str

    @classmethod
    def from_row(cls, row: RowMapping) -> VersionView:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id,
            "instanceName": self.instance_name,
            "submitterId": self.submitter_id,
            "deviceId": self.device_id,
            "userAgent": self.user_agent,
            "createdAt": iso(self.created_at),
            "current": self.current,
            "formVersion": self.form_version,
        }


@dataclass(frozen=True)
class Receipt:
    """The outcome of receiving a submission: what is stored now and how it got there."""

    submission: SubmissionView | None  # None when the caller asked for no view (OpenRosa)
    outcome: str  # "created" | "resent" | "edited"
    attachments_added: int

    def view(self) -> SubmissionView:
        if self.submission is None:
            raise ValueError("this receipt was made without the submission view")
        return self.submission
