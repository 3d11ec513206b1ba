"""What the entities service needs from other services, as ports the composition root fills."""

from __future__ import annotations

from typing import Protocol


class ProjectDirectory(Protocol):
    async def project_exists(self, project_id: int) -> bool:
        """Whether a live project has that id."""
        ...
