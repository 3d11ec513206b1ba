"""The statistics facade: each call checks access, loads only the fields it needs (through
the read facade, `$filter` applied), and runs the pure computation off the event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from odk_mcp.kernel.actor import Actor
from odk_mcp.services.analytics.domain.fields import META_COLUMNS, FieldIndex, Kind, kind_of
from odk_mcp.services.analytics.domain.survey import Design
from odk_mcp.services.analytics.loading import FormFrame, FormFrames, compute

if TYPE_CHECKING:
    from odk_mcp.services.analytics.domain.compare import Comparison
    from odk_mcp.services.analytics.domain.correlate import Correlation
    from odk_mcp.services.analytics.domain.crosstab import Crosstab
    from odk_mcp.services.analytics.domain.estimate import EstimateResult
    from odk_mcp.services.analytics.domain.timeseries import TimeSeries

# SciPy and the statistics modules load on first use: the server's idle memory stays low.
TestChoice = Literal["auto", "chi2", "fisher", "none"]
Method = Literal["auto", "welch", "anova", "welch_anova", "kruskal"]
CorrelationMethod = Literal["pearson", "spearman"]
Interval = Literal["day", "week"]
SplitBy = Literal["none", "enumerator", "form_version"]


class Statistics:
    def __init__(self, frames: FormFrames) -> None:
        self._frames = frames

    async def _load(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        paths: list[str | None],
        odata_filter: str | None,
    ) -> FormFrame:
        form = await self._frames.form(actor, project_id, xml_form_id)
        wanted = [p for p in paths if p is not None and p not in META_COLUMNS]
        meta = [p for p in paths if p is not None and p in META_COLUMNS]
        return await self._frames.load(form, wanted, odata_filter, meta=meta, ordered=False)

    async def crosstab(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        row: str,
        col: str,
        test: TestChoice = "auto",
        suppress_below: int | None = None,
        odata_filter: str | None = None,
    ) -> Crosstab:
        from odk_mcp.services.analytics.domain.crosstab import crosstab, crosstab_of_counts

        form = await self._frames.form(actor, project_id, xml_form_id)
        fields = FieldIndex.of(form.all_fields)
        single = all(p in _paths(fields) and kind_of(fields.get(p)) is Kind.CATEGORICAL for p in (row, col))
        if single:
            # Two single-choice questions: PostgreSQL counts the pairs, only the table leaves it.
            import pyarrow as pa

            from odk_mcp.services.analytics.adapters.frames import answer_text

            columns = [("r", answer_text(row), pa.string()), ("c", answer_text(col), pa.string())]
            counts = await self._frames.counts(form, columns, odata_filter)
            return await compute(lambda: crosstab_of_counts(counts, fields, row, col, test, suppress_below))
        data = await self._frames.load(
            form, [p for p in (row, col) if p in _paths(fields)], odata_filter, [], False
        )
        return await compute(lambda: crosstab(data.frame, data.fields, row, col, test, suppress_below))

    async def compare(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        value: str,
        group: str,
        method: Method = "auto",
        confidence: float = 0.95,
        odata_filter: str | None = None,
    ) -> Comparison:
        data = await self._load(actor, project_id, xml_form_id, [value, group], odata_filter)
        from odk_mcp.services.analytics.domain.compare import compare

        return await compute(lambda: compare(data.frame, data.fields, value, group, method, confidence))

    async def correlate(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        paths: list[str],
        method: CorrelationMethod = "pearson",
        confidence: float = 0.95,
        odata_filter: str | None = None,
    ) -> list[Correlation]:
        data = await self._load(actor, project_id, xml_form_id, list(paths), odata_filter)
        from odk_mcp.services.analytics.domain.correlate import correlate

        return await compute(lambda: correlate(data.frame, data.fields, paths, method, confidence))

    async def estimate(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        path: str,
        design: Design,
        confidence: float = 0.95,
        odata_filter: str | None = None,
    ) -> EstimateResult:
        wanted = [path, design.weights, design.strata, design.clusters]
        data = await self._load(actor, project_id, xml_form_id, wanted, odata_filter)
        from odk_mcp.services.analytics.domain.estimate import estimate

        return await compute(lambda: estimate(data.frame, data.fields, path, design, confidence))

    async def timeseries(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        interval: Interval = "day",
        split_by: SplitBy = "none",
        time_zone: str = "UTC",
        odata_filter: str | None = None,
    ) -> TimeSeries:
        from odk_mcp.services.analytics.domain.timeseries import check_time_zone, timeseries_of_counts

        form = await self._frames.form(actor, project_id, xml_form_id)
        await compute(lambda: check_time_zone(time_zone))
        import pyarrow as pa

        unit = "week" if interval == "week" else "day"
        zone = "'" + time_zone.replace("'", "''") + "'"
        keys = {"none": "NULL::text", "enumerator": "submitter_id::text", "form_version": "form_version"}
        columns = [
            ("period", f"(date_trunc('{unit}', created_at AT TIME ZONE {zone}))::date", pa.date32()),
            ("key", keys[split_by], pa.string()),
        ]
        counts = (await self._frames.counts(form, columns, odata_filter)).rename({"n": "len"})
        return await compute(lambda: timeseries_of_counts(counts, interval, split_by, time_zone))


def _paths(fields: FieldIndex) -> set[str]:
    return {f.path for f in fields.fields}
