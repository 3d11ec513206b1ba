"""A form's data for analysis: permission check, field metadata and the columnar frame.

Everything goes through the aggregation read facade (which checks `submission.list` and
compiles `$filter`) and the forms service's public surface. Analyses run on the published
form's submissions, deleted ones excluded.

With the aggregation service's columnar cache (the default wiring) a frame is read from it,
only the columns asked for, as of one transaction; without one, the fields are extracted from
the read model's JSON by one COPY (`adapters/frames.py`). Both give the same frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation import ROOT, ColumnCache, FormData, ReadModel, number_column, text_column
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.fields import CREATED_AT, META_COLUMNS, FieldIndex, Kind, kind_of
from odk_mcp.services.forms import Field

if TYPE_CHECKING:
    # Polars and PyArrow load on the first analysis, not with the server (idle memory).
    import polars as pl

    from odk_mcp.services.analytics.adapters.frames import Column

T = TypeVar("T")


@dataclass(frozen=True)
class FormFrame:
    form: FormData
    fields: FieldIndex
    frame: pl.DataFrame


def problem_of(error: AnalysisError) -> Problem:
    return Problem(problems.ANALYSIS_NOT_POSSIBLE, error.message, {"reason": error.reason, **error.details})


async def compute(work: Callable[[], T]) -> T:
    """Run CPU-bound analysis off the event loop; analysis errors become 400.60."""
    try:
        return await anyio.to_thread.run_sync(work)
    except AnalysisError as error:
        raise problem_of(error) from error


class FormFrames:
    def __init__(self, read_model: ReadModel, columns: ColumnCache | None = None) -> None:
        self._read = read_model
        self.columns = columns

    async def form(self, actor: Actor, project_id: int, xml_form_id: str) -> FormData:
        """The published form, if the actor may list its submissions (403.1 / 404.1)."""
        return await self._read.form(actor, project_id, xml_form_id, draft=False)

    async def load(
        self,
        form: FormData,
        paths: Sequence[str] | None = None,
        odata_filter: str | None = None,
        meta: Sequence[str] | None = None,
        ordered: bool = True,
    ) -> FormFrame:
        """The form's rows with the given fields (every root-level field when None) and
        metadata columns (all when None), oldest first when `ordered`."""
        fields = FieldIndex.of(form.all_fields)
        try:
            wanted: list[Field] = (
                [fields.get(p) for p in dict.fromkeys(paths)]
                if paths is not None
                else [f for f in fields.fields if f.type not in ("structure", "repeat") and not f.binary]
            )
        except AnalysisError as error:
            raise problem_of(error) from error
        if self.columns is not None:
            frame = await self._from_cache(self.columns, form, wanted, odata_filter, meta, ordered)
            return FormFrame(form, fields, frame)
        conditions = self._read.submission_conditions(form, odata_filter)
        from odk_mcp.services.analytics.adapters.frames import load_frame

        frame = await load_frame(self._read.db, conditions, wanted, meta, ordered)
        return FormFrame(form, fields, frame)

    async def _from_cache(
        self,
        columns: ColumnCache,
        form: FormData,
        wanted: Sequence[Field],
        odata_filter: str | None,
        meta: Sequence[str] | None,
        ordered: bool,
    ) -> pl.DataFrame:
        """The same frame as `load_frame`, from the columnar cache: metadata columns, then each
        field as a number (numeric questions) or its text."""
        import polars as pl

        names = [m for m in META_COLUMNS if meta is None or m in meta]
        sources = {
            f.path: number_column(f.path) if kind_of(f) is Kind.NUMERIC else text_column(f.path)
            for f in wanted
        }
        needed = list(
            dict.fromkeys([*names, *(("created_at", "submission_id") if ordered else ()), *sources.values()])
        )
        frame = (await columns.frames(form, {ROOT: needed}, odata_filter))[ROOT]
        if ordered:
            frame = frame.sort("created_at", "submission_id")
        selected = [
            pl.from_epoch(pl.col(n), time_unit="us").dt.replace_time_zone("UTC").alias(n)
            if n == CREATED_AT
            else pl.col(n)
            for n in names
        ]
        return frame.select(*selected, *(pl.col(source).alias(path) for path, source in sources.items()))

    async def cached(
        self, form: FormData, columns: Sequence[str], odata_filter: str | None = None
    ) -> pl.DataFrame | None:
        """Cache columns (`text_column(path)`, `number_column(path)`, metadata) of the selected
        submissions, or None when there is no columnar cache."""
        if self.columns is None:
            return None
        return (await self.columns.frames(form, {ROOT: list(columns)}, odata_filter))[ROOT]

    async def counts(
        self, form: FormData, columns: Sequence[Column], odata_filter: str | None = None
    ) -> pl.DataFrame:
        """Counts of the submissions grouped by SQL `columns`, computed by PostgreSQL."""
        from odk_mcp.services.analytics.adapters.frames import count_groups

        return await count_groups(
            self._read.db, self._read.submission_conditions(form, odata_filter), columns
        )
