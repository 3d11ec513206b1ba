"""The long analyses that run as jobs, by kind: what each computes and what it leaves behind.

- `quality`: the full scan; its findings and baseline replace the form's previous ones in the
  same transaction that marks the job done (a scan interrupted by a crash leaves nothing, and
  its rerun stores the verdict exactly once). Result: the scan's summary.
- `enumerators`: the full scan's enumerator table (nothing stored). Result: the table.
- `report.html`, `report.pdf`: the insight report. Result: the file.

Jobs run as the server: the actor's permission is checked when the job is created and again
whenever its status or result is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.analytics.progress import Progress
from odk_mcp.services.analytics.quality import Quality
from odk_mcp.services.analytics.reports import MEDIA_TYPES, Reports
from odk_mcp.services.analytics.results import to_json


class AnalysisKind(StrEnum):
    QUALITY = "quality"
    ENUMERATORS = "enumerators"
    REPORT_HTML = "report.html"
    REPORT_PDF = "report.pdf"

    @classmethod
    def parse(cls, value: object) -> AnalysisKind:
        try:
            return cls(str(value))
        except ValueError:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                f"kind must be one of {', '.join(k.value for k in cls)}.",
                {"field": "kind", "value": str(value)[:100]},
            ) from None


@dataclass(frozen=True)
class Output:
    """A finished analysis: JSON `result`, or a file `body` with its media type; `commit`
    writes what the analysis leaves behind, in the transaction that marks the job done."""

    result: dict[str, Any] | None = None
    body: bytes | None = None
    media_type: str | None = None
    commit: Callable[[AsyncConnection], Awaitable[None]] | None = None


class Analyses:
    def __init__(self, quality: Quality, reports: Reports) -> None:
        self._quality = quality
        self._reports = reports

    async def run(self, kind: AnalysisKind, project_id: int, xml_form_id: str, progress: Progress) -> Output:
        if kind is AnalysisKind.QUALITY:
            form, scanned = await self._quality.compute_scan(SYSTEM, project_id, xml_form_id, progress)

            async def commit(conn: AsyncConnection) -> None:
                await self._quality.store_scan(conn, form, scanned)

            summary = {
                "submissions": scanned.submissions,
                "findings": len(scanned.findings),
                "byRule": scanned.by_rule,
                "medianDurationSeconds": scanned.median_duration_seconds,
            }
            return Output(result=to_json(summary), commit=commit)
        if kind is AnalysisKind.ENUMERATORS:
            _, scanned = await self._quality.compute_scan(SYSTEM, project_id, xml_form_id, progress)
            table = {
                "enumerators": scanned.enumerators,
                "medianDurationSeconds": scanned.median_duration_seconds,
            }
            return Output(result=to_json(table))
        fmt: Literal["html", "pdf"] = "html" if kind is AnalysisKind.REPORT_HTML else "pdf"
        body = await self._reports.render(SYSTEM, project_id, xml_form_id, fmt, progress)
        return Output(body=body, media_type=MEDIA_TYPES[fmt])
