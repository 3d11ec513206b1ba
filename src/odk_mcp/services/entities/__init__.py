"""The entities service: entity lists (Central's datasets), their entities and versions,
the OData feed of each list (public surface)."""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.entities.datasets import Datasets
from odk_mcp.services.entities.entities import Entities, UpdateOptions
from odk_mcp.services.entities.odata.feed import EntityFeed, FeedRequest
from odk_mcp.services.entities.ports import ProjectDirectory


@dataclass(frozen=True)
class EntitiesService:
    datasets: Datasets
    entities: Entities
    feed: EntityFeed


def build_entities_service(
    db: Database, authorizer: Authorizer, projects: ProjectDirectory, public_url: str
) -> EntitiesService:
    return EntitiesService(
        datasets=Datasets(db, authorizer, projects),
        entities=Entities(db, authorizer, projects),
        feed=EntityFeed(db, authorizer, projects, public_url),
    )


__all__ = [
    "EntitiesService",
    "FeedRequest",
    "ProjectDirectory",
    "UpdateOptions",
    "build_entities_service",
]
