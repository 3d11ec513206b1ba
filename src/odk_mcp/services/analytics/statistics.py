"""The statistics facade: each call checks access, loads only the fields it needs (through
the read facade, `$filter` applied), and runs the pure computation off the event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from odk_mcp.kernel.actor import Actor
from odk_mcp.services.aggregation import text_column
from odk_mcp.services.analytics.domain.fields import META_COLUMNS, FieldIndex, Kind, kind_of
from odk_mcp.services.analytics.domain.survey import Design
from odk_mcp.services.analytics.loading import FormFrame, FormFrames, compute

if TYPE_CHECKING:
    import polars as pl

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
            cached = await self._frames.cached(form, [text_column(row), text_column(col)], odata_filter)
            if cached is not None:
                # Two single-choice questions: the pairs counted over two cached columns.
                pairs = cached

                def table() -> Crosstab:
                    counts = _answer_counts(pairs, {"r": text_column(row), "c": text_column(col)})
                    return crosstab_of_counts(counts, fields, row, col, test, suppress_below)

                return await compute(table)
            # Without a cache, PostgreSQL counts the pairs; only the table leaves it.
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
        cached = await self._frames.cached(form, ["created_at", "submitter_id", "form_version"], odata_filter)
        if cached is not None:
            submissions = cached
            return await compute(
                lambda: timeseries_of_counts(
                    _period_counts(submissions, interval, split_by, time_zone), interval, split_by, time_zone
                )
            )
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


def _answer_counts(frame: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """Counts of the answer combinations (trimmed of spaces, empty as null) of cached text
    columns: what `GROUP BY NULLIF(btrim(data ->> path), '')` counts in SQL."""
    import polars as pl

    keys = []
    for name, column in columns.items():
        trimmed = pl.col(column).str.strip_chars(" ")
        keys.append(pl.when(trimmed == "").then(None).otherwise(trimmed).alias(name))
    return frame.group_by(keys).agg(pl.len().cast(pl.Int64).alias("n"))


def _period_counts(
    frame: pl.DataFrame, interval: Interval, split_by: SplitBy, time_zone: str
) -> pl.DataFrame:
    """Submissions per (period, key) in the time zone, as the SQL path counts them:
    `date_trunc(unit, created_at AT TIME ZONE zone)::date` (weeks start on Monday)."""
    import polars as pl

    local = (
        pl.from_epoch(pl.col("created_at"), time_unit="us")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(time_zone)
        .dt.replace_time_zone(None)
    )
    period = local.dt.truncate("1w" if interval == "week" else "1d").dt.date().alias("period")
    keys = {
        "none": pl.lit(None, dtype=pl.String),
        "enumerator": pl.col("submitter_id").cast(pl.String),
        "form_version": pl.col("form_version"),
    }
    return frame.group_by(period, keys[split_by].alias("key")).agg(pl.len().cast(pl.Int64).alias("len"))
