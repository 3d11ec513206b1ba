"""What the entities service needs from other services, as ports the composition root fills."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class ProjectDirectory(Protocol):
    async def project_exists(self, project_id: int) -> bool:
        """Whether a live project has that id."""
        ...


class ActorDirectory(Protocol):
    async def display_names(self, actor_ids: Collection[int]) -> dict[int, str]:
        """Display names of the known actors among these ids (OData's `creatorName`)."""
        ...
