"""The forms service: projects, forms and their versions (public surface)."""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.forms.projects import FormCatalogue, Projects, ProjectView


@dataclass(frozen=True)
class FormsService:
    projects: Projects
    catalogue: FormCatalogue


def build_forms_service(db: Database, authorizer: Authorizer) -> FormsService:
    return FormsService(projects=Projects(db, authorizer), catalogue=FormCatalogue(db))


__all__ = ["FormCatalogue", "FormsService", "ProjectView", "build_forms_service"]
