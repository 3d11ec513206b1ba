"""The exports part of the aggregation service, as the composition root wires it: the facade,
the job queue, the spool for file formats, and the audit of each export."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio

from odk_mcp.events import record_audit
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation.exports.facade import Exports, PreparedExport
from odk_mcp.services.aggregation.exports.jobs import ExportJobs


@dataclass(frozen=True)
class ExportsService:
    exports: Exports
    jobs: ExportJobs
    db: Database
    spool: Path

    async def spool_path(self, file_name: str) -> Path:
        """A fresh file in the spool directory for a file format written before it is sent."""
        await anyio.to_thread.run_sync(lambda: self.spool.mkdir(parents=True, exist_ok=True))
        suffix = file_name.rsplit(".", 1)[-1]
        return self.spool / f"{uuid.uuid4()}.{suffix}"

    async def audit_export(self, actor: Actor, export: PreparedExport) -> None:
        """Central audits published-form exports as `form.submission.export`; drafts are not."""
        if export.form.draft:
            return
        async with self.db.transaction() as conn:
            await record_audit(
                conn,
                actor,
                "form.submission.export",
                "form",
                export.form.xml_form_id,
                project_id=export.form.project_id,
                details={"format": export.format.value, "options": export.options.to_json()},
            )

    def start(self) -> None:
        self.jobs.start()

    async def stop(self) -> None:
        await self.jobs.stop()
