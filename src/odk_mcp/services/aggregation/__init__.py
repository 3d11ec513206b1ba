"""The aggregation service: the read side (public surface).

- `ReadModel` (`service.read_model`): the read facade. `await read_model.form(actor, project_id,
  xml_form_id, draft)` checks `submission.list` and gives a `FormData` (newest `schema`,
  `all_fields` merged over every published version, `repeat_paths()`); `root_rows(form,
  odata_filter=None, include_deleted=False, batch_size=1000)` and `repeat_rows(form,
  repeat_path, …)` are async iterators of row batches (`aggregation.rows` /
  `aggregation.repeat_rows` mappings, see docs/aggregation.md), oldest submission first.
- `Projector` (`service.projector`): the event consumer keeping the read model current, and
  `rebuild(form_ids=None, progress=…)` rewriting it from the stored submissions.
- `Summaries` (`service.summaries`): `await summaries.summarize(actor, project_id, xml_form_id,
  draft=False, odata_filter=None, language=None)` → per-question counts, percentages,
  missingness, numeric statistics and histograms, date ranges, submissions per day (Polars
  over the columnar cache; SQL when there is none).
- `ColumnCache` (`service.columns`, None when not configured): `await columns.frames(form,
  {table: [cache columns]}, odata_filter=None)` → typed Polars frames of a form's root and
  repeat tables as of one transaction (`text_column(path)`, `number_column(path)`, metadata
  columns `META`; see columns.py).
- `ReadModelImport` (`service.import_projection`): writes the read model of bulk-imported
  submissions in the import's transaction (registered with the submissions importer).
- `ODataFeeds` (`service.odata`): OData service/metadata/data documents (docs/odata.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from odk_mcp.events import Consumer
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation.bulk import ReadModelImport
from odk_mcp.services.aggregation.catch_up import CatchUp
from odk_mcp.services.aggregation.columns import META, ROOT, ColumnCache, number_column, text_column
from odk_mcp.services.aggregation.domain.flatten import Flattened, RepeatInstance, flatten, merged_fields
from odk_mcp.services.aggregation.odata.feeds import ODataFeeds, SubmitterNames
from odk_mcp.services.aggregation.projection import CONSUMER_NAME, Projector, RebuildProgress
from odk_mcp.services.aggregation.reader import FormData, ReadModel
from odk_mcp.services.aggregation.summaries import Summaries
from odk_mcp.services.forms import FormLookup


@dataclass(frozen=True)
class AggregationService:
    read_model: ReadModel
    projector: Projector
    odata: ODataFeeds
    summaries: Summaries
    catch_up: CatchUp
    public_url: str
    import_projection: ReadModelImport
    columns: ColumnCache | None = None

    async def start(self) -> None:
        """Rebuild in the background when the read model is empty but submissions exist."""
        await self.catch_up.start()

    async def stop(self) -> None:
        await self.catch_up.stop()

    def consumers(self) -> list[Consumer]:
        return [self.projector.consumer()]


def build_aggregation_service(
    db: Database,
    authorizer: Authorizer,
    lookup: FormLookup,
    names: SubmitterNames,
    public_url: str,
    columns_dir: Path | None = None,
) -> AggregationService:
    """`columns_dir`: where the columnar cache keeps its files (None: no cache; summaries and
    analytics then read the read model in SQL)."""
    read_model = ReadModel(db, authorizer, lookup)
    projector = Projector(db, lookup)
    columns = ColumnCache(read_model, columns_dir) if columns_dir is not None else None
    return AggregationService(
        read_model=read_model,
        projector=projector,
        odata=ODataFeeds(read_model, names),
        summaries=Summaries(read_model, columns),
        catch_up=CatchUp(db, projector),
        public_url=public_url,
        import_projection=ReadModelImport(lookup),
        columns=columns,
    )


__all__ = [
    "CONSUMER_NAME",
    "META",
    "ROOT",
    "AggregationService",
    "ColumnCache",
    "Flattened",
    "FormData",
    "ODataFeeds",
    "Projector",
    "ReadModel",
    "ReadModelImport",
    "RebuildProgress",
    "RepeatInstance",
    "SubmitterNames",
    "Summaries",
    "build_aggregation_service",
    "flatten",
    "merged_fields",
    "number_column",
    "text_column",
]
