"""What the users service needs from elsewhere, provided by the composition root."""

from __future__ import annotations

from typing import Protocol


class Catalogue(Protocol):
    """Existence of projects and forms (owned by the forms service)."""

    async def project_exists(self, project_id: int) -> bool: ...

    async def form_exists(self, project_id: int, xml_form_id: str) -> bool: ...
