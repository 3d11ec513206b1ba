"""What the webhooks service needs from others, as ports the composition root fills."""

from __future__ import annotations

from typing import Protocol


class ProjectCatalogue(Protocol):
    async def project_exists(self, project_id: int) -> bool:
        """Whether the project exists (and is not deleted)."""
        ...
