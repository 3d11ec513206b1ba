"""A form's data for analysis: permission check, field metadata and the columnar frame.

Everything goes through the aggregation read facade (which checks `submission.list` and
compiles `$filter`) and the forms service's public surface. Analyses run on the published
form's submissions, deleted ones excluded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation import FormData, ReadModel
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.fields import FieldIndex
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
    def __init__(self, read_model: ReadModel) -> None:
        self._read = read_model

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
        conditions = self._read.submission_conditions(form, odata_filter)
        from odk_mcp.services.analytics.adapters.frames import load_frame

        frame = await load_frame(self._read.db, conditions, wanted, meta, ordered)
        return FormFrame(form, fields, frame)

    async def counts(
        self, form: FormData, columns: Sequence[Column], odata_filter: str | None = None
    ) -> pl.DataFrame:
        """Counts of the submissions grouped by SQL `columns`, computed by PostgreSQL."""
        from odk_mcp.services.analytics.adapters.frames import count_groups

        return await count_groups(
            self._read.db, self._read.submission_conditions(form, odata_filter), columns
        )
