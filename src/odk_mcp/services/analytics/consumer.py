"""The incremental quality consumer: checks each received or edited submission on its own.

It reads the submission through the aggregation read model. Consumers run in no fixed order,
so it first asks the aggregation service's projector (its public, idempotent `apply`) to
bring that submission's rows current in the same transaction, then reads them there. A
deleted submission, or an event about a version older than the current one, needs no check
(the newer version's event does the work). Drafts are not checked. Findings of the rules it checks are
replaced for that submission in the delivery's transaction, so a retried or repeated delivery
leaves the same findings.
"""

from __future__ import annotations

from sqlalchemy import literal_column
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import Consumer, Event
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation import Projector, ReadModel
from odk_mcp.services.analytics.adapters import store
from odk_mcp.services.analytics.adapters.store import FormRef
from odk_mcp.services.analytics.domain.fields import VERSION_ID, FieldIndex
from odk_mcp.services.analytics.quality import Quality

CONSUMER_NAME = "analytics.quality"
EVENTS = frozenset({"submission.received", "submission.edited"})


class QualityConsumer:
    def __init__(self, read_model: ReadModel, projector: Projector, quality: Quality) -> None:
        self._read = read_model
        self._projector = projector
        self._quality = quality

    def consumer(self) -> Consumer:
        return Consumer(CONSUMER_NAME, EVENTS, self.handle)

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        payload = event.payload
        submission_id, version_id = payload.get("submissionId"), payload.get("versionId")
        if payload.get("draft") or not isinstance(submission_id, int) or not isinstance(version_id, int):
            return
        try:
            form = await self._read.form(SYSTEM, int(payload["projectId"]), str(payload["xmlFormId"]), False)
        except Problem as problem:
            if problem.kind is problems.NOT_FOUND:
                return  # the form was deleted since: nothing to check
            raise
        fields = FieldIndex.of(form.all_fields)
        conditions = [
            *self._read.submission_conditions(form),
            literal_column("submission_id") == submission_id,
        ]
        wanted = [f for f in fields.fields if f.type not in ("structure", "repeat") and not f.binary]
        # Polars and PyArrow load on the first event, not with the server (idle memory).
        from odk_mcp.services.analytics.adapters.frames import load_frame_on
        from odk_mcp.services.analytics.domain.quality.incremental import Baseline, check_submissions

        await self._projector.apply(conn, submission_id, event.id)
        frame = await load_frame_on(conn, conditions, wanted)
        if frame.height == 0 or frame[VERSION_ID][0] != version_id:
            return  # deleted, or since edited again
        config = await self._quality.config_for(SYSTEM, form)
        stored = await store.baseline_of(conn, form.form_id)
        baseline = Baseline.from_json(stored) if stored is not None else None
        rules, found = check_submissions(frame, fields, config, baseline)
        ref = FormRef(form.project_id, form.form_id, form.xml_form_id)
        await store.replace_for_submission(conn, ref, submission_id, rules, found)
