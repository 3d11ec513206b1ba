"""The summaries facade (`GET …/summary`, the MCP tools, analytics): per-question counts,
percentages, missingness, numeric statistics and histograms, date ranges and submissions per
day of a form's (filtered) submissions.

With a columnar cache (the default wiring) the summary is computed by Polars over the few
typed columns it needs, read from the cache as of one transaction (a `$filter` is evaluated
by PostgreSQL, selecting submission ids); without one, in SQL over the read model
(`summaries_sql`). Both give the same answer.
"""

from __future__ import annotations

from typing import Any

import anyio

from odk_mcp.kernel.actor import Actor
from odk_mcp.services.aggregation.columns import ROOT, ColumnCache
from odk_mcp.services.aggregation.domain.summary import UNSUMMARISED
from odk_mcp.services.aggregation.reader import FormData, ReadModel
from odk_mcp.services.aggregation.summaries_sql import SqlSummaries
from odk_mcp.services.forms import Field


class Summaries:
    def __init__(self, read_model: ReadModel, columns: ColumnCache | None = None) -> None:
        self._read_model = read_model
        self._columns = columns
        self.sql = SqlSummaries(read_model)

    async def summarize(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        draft: bool = False,
        odata_filter: str | None = None,
        language: str | None = None,
    ) -> dict[str, Any]:
        """The summary of a form's (filtered) submissions; `submission.list` is checked."""
        form = await self._read_model.form(actor, project_id, xml_form_id, draft)
        if self._columns is None:
            return await self.sql.summarize_form(form, odata_filter, language)
        return await self.summarize_form(form, odata_filter, language)

    async def summarize_form(
        self, form: FormData, odata_filter: str | None = None, language: str | None = None
    ) -> dict[str, Any]:
        """The summary from the columnar cache (the caller checked access)."""
        assert self._columns is not None
        from odk_mcp.services.aggregation import summary_frames

        fields = [f for f in form.fields if f.type not in UNSUMMARISED]
        tables: dict[str, list[Field]] = {}
        for path in [ROOT, *form.repeat_paths()]:
            own = [f for f in fields if (f.repeat or ROOT) == path]
            if own or path == ROOT:
                tables[path] = own
        columns = {path: summary_frames.table_columns(own) for path, own in tables.items()}
        columns[ROOT] = ["created_at", *columns[ROOT]]
        frames = await self._columns.frames(form, columns, odata_filter)
        total, per_day, questions = await anyio.to_thread.run_sync(
            lambda: summary_frames.summarize(frames, tables, language)
        )
        return {
            "xmlFormId": form.xml_form_id,
            "draft": form.draft,
            "filter": odata_filter,
            "submissions": total,
            "submissionsPerDay": per_day,
            "questions": [questions[f.path] for f in fields if f.path in questions],
        }
