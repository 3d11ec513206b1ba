"""The data-quality facade: full scans on demand (stored, replacing the previous verdict),
findings listed per form / submission / enumerator, dismissals (audited), project areas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation import FormData
from odk_mcp.services.analytics.adapters import store
from odk_mcp.services.analytics.adapters.store import FormRef, StoredFinding
from odk_mcp.services.analytics.domain.quality.findings import Area, QualityConfig
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.progress import Progress, in_thread
from odk_mcp.services.forms import FormsService

if TYPE_CHECKING:
    from odk_mcp.services.analytics.domain.quality.scan import QualityScan

MAX_COMMENT = 2000


@dataclass(frozen=True)
class FindingPage:
    total: int
    findings: list[StoredFinding]


def area_from_json(data: dict[str, Any] | None) -> Area | None:
    """A stored or posted area: {"box": [min_lon, min_lat, max_lon, max_lat]} or
    {"polygon": [[lon, lat], ...]} (at least three vertices)."""
    if data is None:
        return None
    box, polygon = data.get("box"), data.get("polygon")
    if box is not None and polygon is None:
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            raise Problem(problems.UNEXPECTED_VALUE, "box must be [min_lon, min_lat, max_lon, max_lat].")
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in box)
        if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
            raise Problem(
                problems.UNEXPECTED_VALUE, "box must have min < max within ±180 longitude, ±90 latitude."
            )
        return Area(box=(min_lon, min_lat, max_lon, max_lat))
    if polygon is not None and box is None:
        ok = isinstance(polygon, list) and 3 <= len(polygon) <= 10_000
        ok = ok and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) for v in p)
            for p in polygon
        )
        if not ok:
            raise Problem(problems.UNEXPECTED_VALUE, "polygon must be 3 to 10,000 [lon, lat] vertices.")
        return Area(polygon=tuple((float(p[0]), float(p[1])) for p in polygon))
    raise Problem(problems.UNEXPECTED_VALUE, "Give either box or polygon.")


class Quality:
    def __init__(self, db: Database, frames: FormFrames, forms: FormsService, authorizer: Authorizer) -> None:
        self._db = db
        self._frames = frames
        self._forms = forms
        self._authz = authorizer

    async def config_for(self, actor: Actor, form: FormData) -> QualityConfig:
        async with self._db.read() as conn:
            area = await store.area_of(conn, form.project_id)
        view = await self._forms.catalog.get(actor, form.project_id, form.xml_form_id)
        created: datetime = view.created_at
        return QualityConfig(area=area_from_json(area), form_created_at=created)

    async def compute_scan(
        self, actor: Actor, project_id: int, xml_form_id: str, progress: Progress | None = None
    ) -> tuple[FormData, QualityScan]:
        """Load the form's rows and run every rule (`progress` hears each stage)."""
        form = await self._frames.form(actor, project_id, xml_form_id)
        config = await self.config_for(actor, form)
        if progress is not None:
            progress("loading", 0, None)
        data = await self._frames.load(form)

        def work() -> QualityScan:
            # scikit-learn loads on first use, in this thread (seconds the event loop must not wait).
            from odk_mcp.services.analytics.domain.quality.scan import scan

            return scan(data.frame, data.fields, config, progress)

        return form, await in_thread(work)

    async def rescan(self, actor: Actor, project_id: int, xml_form_id: str) -> QualityScan:
        """Run every rule over the form and store the verdict (and the incremental baseline)."""
        form, result = await self.compute_scan(actor, project_id, xml_form_id)
        async with self._db.transaction() as conn:
            await self.store_scan(conn, form, result)
        return result

    async def store_scan(self, conn: AsyncConnection, form: FormData, result: QualityScan) -> None:
        """Replace the form's findings and baseline with a scan's, in the caller's transaction."""
        ref = FormRef(form.project_id, form.form_id, form.xml_form_id)
        await store.replace_all(conn, ref, result.findings)
        await store.set_baseline(conn, form.form_id, result.submissions, result.baseline.to_json())

    async def findings(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        submission_id: int | None = None,
        enumerator: str | None = None,
        rule: str | None = None,
        include_dismissed: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> FindingPage:
        form = await self._frames.form(actor, project_id, xml_form_id)
        async with self._db.read() as conn:
            total, rows = await store.listed(
                conn, form.form_id, submission_id, enumerator, rule, include_dismissed, limit, offset
            )
        return FindingPage(total, rows)

    async def dismiss(
        self, actor: Actor, project_id: int, xml_form_id: str, finding_id: int, comment: str
    ) -> StoredFinding:
        """Mark a finding as reviewed and not a problem (needs `submission.update`; audited)."""
        form = await self._frames.form(actor, project_id, xml_form_id)
        self._authz.require(actor, "submission.update", project_id, xml_form_id)
        comment = comment.strip()
        if not comment or len(comment) > MAX_COMMENT:
            raise Problem(
                problems.UNEXPECTED_VALUE, f"A dismissal needs a comment of 1 to {MAX_COMMENT} characters."
            )
        async with self._db.transaction() as conn:
            found = await store.one(conn, form.form_id, finding_id)
            if found is None:
                raise Problem(problems.NOT_FOUND)
            await store.dismiss(conn, form.form_id, finding_id, actor.id if actor.id > 0 else None, comment)
            await record_audit(
                conn,
                actor,
                "analytics.finding.dismiss",
                "finding",
                finding_id,
                project_id,
                {
                    "xmlFormId": xml_form_id,
                    "rule": found.rule,
                    "submissionId": found.submission_id,
                    "comment": comment,
                },
            )
            dismissed = await store.one(conn, form.form_id, finding_id)
        assert dismissed is not None
        return dismissed

    async def area(self, actor: Actor, project_id: int) -> dict[str, Any] | None:
        self._authz.require(actor, "project.read", project_id)
        if not await self._forms.catalogue.project_exists(project_id):
            raise Problem(problems.NOT_FOUND)
        async with self._db.read() as conn:
            return await store.area_of(conn, project_id)

    async def set_area(
        self, actor: Actor, project_id: int, area: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Set (or with None clear) the project's fieldwork area (needs `project.update`; audited)."""
        self._authz.require(actor, "project.update", project_id)
        if not await self._forms.catalogue.project_exists(project_id):
            raise Problem(problems.NOT_FOUND)
        area_from_json(area)
        async with self._db.transaction() as conn:
            await store.set_area(conn, project_id, area)
            await record_audit(
                conn, actor, "analytics.area.update", "project", project_id, project_id, {"area": area}
            )
        return area
