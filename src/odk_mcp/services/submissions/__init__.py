"""The submissions service: receiving, storing and managing submissions (public surface)."""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.forms import FormLookup
from odk_mcp.services.submissions.bulk import (
    IMPORTED_EVENT,
    ImportDocument,
    Importer,
    ImportProjection,
    ImportResult,
)
from odk_mcp.services.submissions.media import AttachmentBlob, current_attachments
from odk_mcp.services.submissions.queries import (
    META_FIELDS,
    OPERATORS,
    Condition,
    Keyset,
    QueryPage,
    QueryRow,
    SubmissionQueries,
)
from odk_mcp.services.submissions.receiving import IncomingFile, Receiver, ReceiveSubmission
from odk_mcp.services.submissions.records import ListFilter, Records
from odk_mcp.services.submissions.snapshots import (
    SUBMISSION_EVENTS,
    SubmissionSnapshot,
    count_submissions,
    current_xml,
    read_snapshot,
    read_snapshots,
    submission_ids,
)
from odk_mcp.services.submissions.views import Receipt, SubmissionView
from odk_mcp.services.submissions.writer import GroupWriter


@dataclass(frozen=True)
class SubmissionsService:
    receiver: Receiver
    writer: GroupWriter | None
    records: Records
    queries: SubmissionQueries
    max_xml_bytes: int
    max_submission_bytes: int
    importer: Importer

    async def stop(self) -> None:
        if self.writer is not None:
            await self.writer.close()


def build_submissions_service(
    db: Database,
    authorizer: Authorizer,
    lookup: FormLookup,
    blobs: BlobStore,
    max_xml_bytes: int,
    max_submission_bytes: int,
    writer: GroupWriter | None = None,
) -> SubmissionsService:
    return SubmissionsService(
        receiver=Receiver(db, authorizer, lookup, blobs, max_xml_bytes, writer),
        writer=writer,
        records=Records(db, authorizer, lookup, blobs),
        queries=SubmissionQueries(db, authorizer, lookup),
        max_xml_bytes=max_xml_bytes,
        max_submission_bytes=max_submission_bytes,
        importer=Importer(db, authorizer, lookup, max_xml_bytes),
    )


__all__ = [
    "IMPORTED_EVENT",
    "META_FIELDS",
    "OPERATORS",
    "SUBMISSION_EVENTS",
    "AttachmentBlob",
    "Condition",
    "GroupWriter",
    "ImportDocument",
    "ImportProjection",
    "ImportResult",
    "Importer",
    "IncomingFile",
    "Keyset",
    "ListFilter",
    "QueryPage",
    "QueryRow",
    "Receipt",
    "ReceiveSubmission",
    "SubmissionQueries",
    "SubmissionSnapshot",
    "SubmissionView",
    "SubmissionsService",
    "build_submissions_service",
    "count_submissions",
    "current_attachments",
    "current_xml",
    "read_snapshot",
    "read_snapshots",
    "submission_ids",
]
