"""The entities service: entity lists (Central's datasets), their entities and versions, the
OData feed of each list, entities from submissions, and lists as form attachments (public surface)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from odk_mcp.events import Consumer
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.entities.backlog import BacklogSweeper
from odk_mcp.services.entities.datasets import Datasets
from odk_mcp.services.entities.declarations import FormDeclarations
from odk_mcp.services.entities.entities import Entities, UpdateOptions
from odk_mcp.services.entities.files import DatasetFiles
from odk_mcp.services.entities.odata.feed import EntityFeed, FeedRequest
from odk_mcp.services.entities.ports import ActorDirectory, ProjectDirectory
from odk_mcp.services.entities.processing import SubmissionEntities
from odk_mcp.services.forms import FormLookup

SUBMISSION_EVENTS = frozenset({"submission.received", "submission.edited", "submission.reviewed"})


@dataclass(frozen=True)
class EntitiesService:
    datasets: Datasets
    entities: Entities
    feed: EntityFeed
    files: DatasetFiles  # also the forms service's DatasetAttachments port
    declarations: FormDeclarations
    processor: SubmissionEntities
    backlog: BacklogSweeper  # held offline updates, forced past the wait

    def consumers(self) -> list[Consumer]:
        """Event consumers: entity declarations of published forms, entities from submissions."""
        return [
            Consumer("entities.form_declarations", frozenset({"form.published"}), self.declarations.handle),
            Consumer(
                "entities.submissions", SUBMISSION_EVENTS, self.processor.handle, self.processor.handle_batch
            ),
        ]


def build_entities_service(
    db: Database,
    authorizer: Authorizer,
    projects: ProjectDirectory,
    lookup: FormLookup,
    names: ActorDirectory,
    public_url: str,
    backlog_wait: timedelta = timedelta(days=5),
    backlog_sweep_seconds: float = 3600.0,
) -> EntitiesService:
    processor = SubmissionEntities()
    return EntitiesService(
        datasets=Datasets(db, authorizer, projects, lookup, processor),
        entities=Entities(db, authorizer, projects),
        feed=EntityFeed(db, authorizer, projects, names, public_url),
        files=DatasetFiles(db, authorizer, lookup),
        declarations=FormDeclarations(lookup),
        processor=processor,
        backlog=BacklogSweeper(db, backlog_wait, backlog_sweep_seconds),
    )


__all__ = [
    "ActorDirectory",
    "BacklogSweeper",
    "EntitiesService",
    "FeedRequest",
    "ProjectDirectory",
    "UpdateOptions",
    "build_entities_service",
]
