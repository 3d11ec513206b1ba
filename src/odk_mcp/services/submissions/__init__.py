"""The submissions service: receiving, storing and managing submissions (public surface)."""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.forms import FormLookup
from odk_mcp.services.submissions.media import AttachmentBlob, current_attachments
from odk_mcp.services.submissions.receiving import IncomingFile, Receiver, ReceiveSubmission
from odk_mcp.services.submissions.records import ListFilter, Records
from odk_mcp.services.submissions.snapshots import (
    SUBMISSION_EVENTS,
    SubmissionSnapshot,
    count_submissions,
    read_snapshot,
    read_snapshots,
    submission_ids,
)
from odk_mcp.services.submissions.views import Receipt, SubmissionView


@dataclass(frozen=True)
class SubmissionsService:
    receiver: Receiver
    records: Records
    max_xml_bytes: int
    max_submission_bytes: int


def build_submissions_service(
    db: Database,
    authorizer: Authorizer,
    lookup: FormLookup,
    blobs: BlobStore,
    max_xml_bytes: int,
    max_submission_bytes: int,
) -> SubmissionsService:
    return SubmissionsService(
        receiver=Receiver(db, authorizer, lookup, blobs, max_xml_bytes),
        records=Records(db, authorizer, lookup, blobs),
        max_xml_bytes=max_xml_bytes,
        max_submission_bytes=max_submission_bytes,
    )


__all__ = [
    "SUBMISSION_EVENTS",
    "AttachmentBlob",
    "IncomingFile",
    "ListFilter",
    "Receipt",
    "ReceiveSubmission",
    "SubmissionSnapshot",
    "SubmissionView",
    "SubmissionsService",
    "build_submissions_service",
    "count_submissions",
    "current_attachments",
    "read_snapshot",
    "read_snapshots",
    "submission_ids",
]
