"""The incremental quality consumer: checks each received or edited submission on its own.

It reads the submissions through the aggregation read model. Consumers run in no fixed order,
so it first asks the aggregation service's projector (its public, idempotent `apply_many`) to
bring those submissions' rows current in the same transaction, then reads them there. A
deleted submission, or an event about a version older than the current one, needs no check
(the newer version's event does the work). Drafts are not checked. Findings of the rules it
checks are replaced for those submissions in the delivery's transaction, so a retried or
repeated delivery leaves the same findings.

A batch of events is checked form by form: one read of the form, its configuration and
baseline, one frame of all its submissions in the batch, one replacement of their findings.
The rules it runs judge each submission by itself (against the baseline), so checking them
together gives each the findings it would get alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import literal_column
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import Consumer, Event
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation import Projector, ReadModel
from odk_mcp.services.analytics.adapters import store
from odk_mcp.services.analytics.adapters.store import FormRef
from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, VERSION_ID, FieldIndex
from odk_mcp.services.analytics.quality import Quality

CONSUMER_NAME = "analytics.quality"
EVENTS = frozenset({"submission.received", "submission.edited"})

# submission id -> (the version its latest event in the batch names, that event's id)
_Wanted = dict[int, tuple[int, int]]


class QualityConsumer:
    def __init__(self, read_model: ReadModel, projector: Projector, quality: Quality) -> None:
        self._read = read_model
        self._projector = projector
        self._quality = quality

    def consumer(self) -> Consumer:
        return Consumer(CONSUMER_NAME, EVENTS, self.handle, self.handle_batch)

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        await self.handle_batch(conn, [event])

    async def handle_batch(self, conn: AsyncConnection, events: Sequence[Event]) -> None:
        by_form: dict[tuple[int, str], _Wanted] = {}
        for event in events:
            payload = event.payload
            submission_id, version_id = payload.get("submissionId"), payload.get("versionId")
            if payload.get("draft") or not isinstance(submission_id, int) or not isinstance(version_id, int):
                continue
            wanted = by_form.setdefault((int(payload["projectId"]), str(payload["xmlFormId"])), {})
            if submission_id not in wanted or wanted[submission_id][1] < event.id:
                wanted[submission_id] = (version_id, event.id)
        for (project_id, xml_form_id), wanted in by_form.items():
            await self._check(conn, project_id, xml_form_id, wanted)

    async def _check(self, conn: AsyncConnection, project_id: int, xml_form_id: str, wanted: _Wanted) -> None:
        try:
            form = await self._read.form(SYSTEM, project_id, xml_form_id, False)
        except Problem as problem:
            if problem.kind is problems.NOT_FOUND:
                return  # the form was deleted since: nothing to check
            raise
        fields = FieldIndex.of(form.all_fields)
        ids = sorted(wanted)
        conditions = [
            *self._read.submission_conditions(form),
            literal_column("submission_id").in_(ids),
        ]
        columns = [f for f in fields.fields if f.type not in ("structure", "repeat") and not f.binary]
        # Polars and PyArrow load on the first event, not with the server (idle memory), and
        # in a thread: a second-long import would otherwise stall every request in flight.
        await asyncio.to_thread(_load_polars)
        import polars as pl

        from odk_mcp.services.analytics.adapters.frames import load_frame_on
        from odk_mcp.services.analytics.domain.quality.incremental import Baseline, check_submissions

        await self._projector.apply_many(conn, {i: event_id for i, (_, event_id) in wanted.items()})
        frame = await load_frame_on(conn, conditions, columns)
        # Deleted, or since edited again: the newer version's event checks it.
        expected = pl.DataFrame(
            {SUBMISSION_ID: ids, VERSION_ID: [wanted[i][0] for i in ids]},
            schema={SUBMISSION_ID: frame.schema[SUBMISSION_ID], VERSION_ID: frame.schema[VERSION_ID]},
        )
        frame = frame.join(expected, on=[SUBMISSION_ID, VERSION_ID], how="semi", maintain_order="left")
        if frame.height == 0:
            return
        config = await self._quality.config_for(SYSTEM, form)
        stored = await store.baseline_of(conn, form.form_id)
        baseline = Baseline.from_json(stored) if stored is not None else None
        rules, found = await asyncio.to_thread(check_submissions, frame, fields, config, baseline)
        ref = FormRef(form.project_id, form.form_id, form.xml_form_id)
        checked = frame[SUBMISSION_ID].to_list()
        await store.replace_for_submissions(conn, ref, checked, rules, found)


def _load_polars() -> None:
    import polars  # noqa: F401

    import odk_mcp.services.analytics.adapters.frames
    import odk_mcp.services.analytics.domain.quality.incremental  # noqa: F401
