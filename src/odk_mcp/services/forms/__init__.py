"""The forms service: projects, forms and their versions (public surface)."""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.infra.blobs import BlobStore
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.forms.adapters.conversion import Converter
from odk_mcp.services.forms.catalog import FormCatalog
from odk_mcp.services.forms.datasets import DatasetAttachments, LinkedDataset
from odk_mcp.services.forms.domain.attachments import safe_name
from odk_mcp.services.forms.domain.schema import Choice, Field, FormSchema
from odk_mcp.services.forms.drafts import Drafts
from odk_mcp.services.forms.lookup import FormLookup, FormTarget, FormVersions, TargetMiss
from odk_mcp.services.forms.openrosa import Discovery
from odk_mcp.services.forms.projects import FormCatalogue, Projects, ProjectView
from odk_mcp.services.forms.sensitivity import FormSensitivity, SensitivityView
from odk_mcp.services.forms.uploads import FormUploads, UploadOptions
from odk_mcp.services.forms.views import ConversionView, FormView


@dataclass(frozen=True)
class FormLimits:
    max_form_bytes: int
    max_attachment_bytes: int
    conversion_workers: int
    conversion_timeout_seconds: float
    conversion_memory_bytes: int
    conversion_wait_seconds: float
    max_unzipped_bytes: int


@dataclass(frozen=True)
class FormsService:
    projects: Projects
    catalogue: FormCatalogue
    catalog: FormCatalog
    drafts: Drafts
    uploads: FormUploads
    discovery: Discovery
    lookup: FormLookup
    sensitivity: FormSensitivity
    converter: Converter
    max_attachment_bytes: int
    public_url: str

    async def start(self) -> None:
        """Resume XLSForm conversions a crash interrupted."""
        await self.uploads.resume_unfinished()

    async def stop(self) -> None:
        await self.uploads.wait_idle()
        self.converter.close()


def build_forms_service(
    db: Database,
    authorizer: Authorizer,
    blobs: BlobStore,
    limits: FormLimits,
    public_url: str,
    form_cache_seconds: float = 0.0,
    datasets: DatasetAttachments | None = None,
) -> FormsService:
    lookup = FormLookup(db, ttl_seconds=form_cache_seconds)
    converter = Converter(
        limits.conversion_workers,
        limits.conversion_timeout_seconds,
        limits.conversion_memory_bytes,
        limits.max_unzipped_bytes,
    )
    catalog = FormCatalog(db, authorizer, blobs, limits.max_form_bytes, lookup)
    drafts = Drafts(db, authorizer, blobs, limits.max_form_bytes, lookup, datasets)
    uploads = FormUploads(
        db,
        authorizer,
        catalog,
        drafts,
        converter,
        blobs,
        wait_seconds=limits.conversion_wait_seconds,
        stale_after_seconds=limits.conversion_timeout_seconds,
    )
    return FormsService(
        projects=Projects(db, authorizer, lookup),
        catalogue=FormCatalogue(db),
        catalog=catalog,
        drafts=drafts,
        uploads=uploads,
        discovery=Discovery(db, authorizer, datasets),
        lookup=lookup,
        sensitivity=FormSensitivity(db, authorizer, catalog),
        converter=converter,
        max_attachment_bytes=limits.max_attachment_bytes,
        public_url=public_url,
    )


__all__ = [
    "Choice",
    "ConversionView",
    "DatasetAttachments",
    "Field",
    "FormCatalogue",
    "FormLimits",
    "FormLookup",
    "FormSchema",
    "FormTarget",
    "FormVersions",
    "FormView",
    "FormsService",
    "LinkedDataset",
    "ProjectView",
    "SensitivityView",
    "TargetMiss",
    "UploadOptions",
    "build_forms_service",
    "safe_name",
]
