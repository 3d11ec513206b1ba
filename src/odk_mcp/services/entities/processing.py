"""Entities from submissions: a submission of a form whose definition declares entity blocks
creates or updates the entities they name — one per block, and one per repeat instance for
blocks inside repeats (spec 2025.1) — when it arrives, or when it is approved, for lists that
require approval.

The consumer of `submission.received`, `submission.edited` and `submission.reviewed` runs in
the delivery's transaction and records one outcome per submission version and list
(`created`, `updated`, `applied` for several entities, `held`, `pending`, `error`, `skipped`),
which makes it idempotent: a version is applied to a list at most once, however often its
events are delivered.

A submission's entities are applied together, as in Central: when one of them is refused
(unknown entity, bad UUID, blank label, …), none of the submission's entities is kept, and
the refusal is recorded with Central's problem code, the list and the entity it concerns, in
the audit log (`entity.error`); it never fails the delivery, since retrying would refuse it
again. An offline update that must wait for its predecessor is held in the backlog while the
others apply (see `backlog`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import Event
from odk_mcp.kernel import problems
from odk_mcp.kernel.safe_xml import UnsafeXml, parse_xml
from odk_mcp.services.entities.actions import Applied, Refused, Target, apply_request, record_refusal
from odk_mcp.services.entities.adapters.tables import datasets, form_defs, submission_outcomes
from odk_mcp.services.entities.backlog import release_next
from odk_mcp.services.entities.domain.submission import EntityRequestError, read_entity_requests
from odk_mcp.services.submissions import SubmissionSnapshot, current_xml, read_snapshot

MAX_SUBMISSION_XML_BYTES = 100_000_000

Ready = list[tuple[RowMapping, Sequence[RowMapping]]]  # (locked list, its declarations)


def _summary(results: list[Applied]) -> tuple[str, str | None]:
    """One outcome for what a submission version did to one list."""
    if not results:
        return "skipped", None
    if len(results) == 1:
        return results[0].outcome, results[0].uuid
    if all(r.outcome == "held" for r in results):
        return "held", None
    return "applied", None


class SubmissionEntities:
    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        def_id = event.payload.get("formDefId")
        if def_id is not None and not await self._declares(conn, int(def_id)):
            return  # most forms declare no entities: one indexed lookup, no snapshot
        snapshot = await read_snapshot(conn, int(event.payload["submissionId"]))
        if snapshot is None or snapshot.draft or snapshot.deleted_at is not None:
            return
        stmt = (
            select(form_defs)
            .where(form_defs.c.form_def_id == snapshot.form_def_id, form_defs.c.dataset_id.is_not(None))
            .order_by(form_defs.c.dataset_id, form_defs.c.entity_path)
        )
        by_list: dict[int, list[RowMapping]] = {}
        for row in (await conn.execute(stmt)).mappings().all():
            by_list.setdefault(row["dataset_id"], []).append(row)
        ready: Ready = []
        for dataset_id, declared in by_list.items():  # in id order: locks taken in one order
            key = (
                (submission_outcomes.c.submission_id == snapshot.submission_id)
                & (submission_outcomes.c.instance_id == snapshot.current_instance_id)
                & (submission_outcomes.c.dataset_id == dataset_id)
            )
            recorded = (
                await conn.execute(select(submission_outcomes.c.outcome).where(key).with_for_update())
            ).scalar()
            if recorded is not None and recorded != "pending":
                continue
            lock = select(datasets).where(datasets.c.id == dataset_id).with_for_update()
            dataset = (await conn.execute(lock)).mappings().one()
            if dataset["approval_required"] and snapshot.review_state != "approved":
                if recorded is None:
                    await self._record(conn, snapshot, dataset_id, "pending", None)
                continue
            ready.append((dataset, declared))
        if ready:
            await self.apply(conn, snapshot, ready)

    async def handle_batch(self, conn: AsyncConnection, events: Sequence[Event]) -> None:
        """`handle` for several events, with one look-up of which of their form definitions
        declare an entity: the events of the others need nothing."""
        def_ids = {int(d) for e in events if (d := e.payload.get("formDefId")) is not None}
        declaring = set()
        if def_ids:
            stmt = select(form_defs.c.form_def_id).where(
                form_defs.c.form_def_id.in_(sorted(def_ids)), form_defs.c.dataset_id.is_not(None)
            )
            declaring = set((await conn.execute(stmt)).scalars())
        for event in events:
            def_id = event.payload.get("formDefId")
            if def_id is None or int(def_id) in declaring:
                await self.handle(conn, event)

    async def _declares(self, conn: AsyncConnection, def_id: int) -> bool:
        stmt = select(form_defs.c.form_def_id).where(
            form_defs.c.form_def_id == def_id, form_defs.c.dataset_id.is_not(None)
        )
        return (await conn.execute(stmt.limit(1))).first() is not None

    async def apply(self, conn: AsyncConnection, snapshot: SubmissionSnapshot, ready: Ready) -> None:
        """Apply one submission version's entities to these lists (whose rows the caller holds
        locked): all of them, or — when one is refused — none."""
        xml = await current_xml(conn, snapshot.submission_id)
        if xml is None:
            return
        results: dict[int, list[Applied]] = {dataset["id"]: [] for dataset, _ in ready}
        try:
            async with conn.begin_nested():
                root = parse_xml(xml, MAX_SUBMISSION_XML_BYTES)
                for dataset, declared in ready:
                    for decl in declared:
                        try:
                            requests = read_entity_requests(root, decl["entity_path"], decl["saveto"])
                        except EntityRequestError as exc:
                            refused = Refused(problems.INVALID_ENTITY, str(exc))
                            refused.dataset = dataset["name"]
                            raise refused from exc
                        for request in requests:
                            try:
                                applied = await apply_request(conn, Target(snapshot, dataset, decl), request)
                            except Refused as refused:
                                refused.dataset, refused.request = dataset["name"], request
                                raise
                            results[dataset["id"]].append(applied)
        except UnsafeXml as exc:
            await self._refuse(conn, snapshot, ready, Refused(problems.INVALID_ENTITY, str(exc)))
            return
        except Refused as refused:
            await self._refuse(conn, snapshot, ready, refused)
            return
        for dataset, _ in ready:
            outcome, uuid = _summary(results[dataset["id"]])
            await self._record(conn, snapshot, dataset["id"], outcome, uuid)
        await release_next(conn, [a for applied in results.values() for a in applied])

    async def _refuse(
        self, conn: AsyncConnection, snapshot: SubmissionSnapshot, ready: Ready, refused: Refused
    ) -> None:
        problem = await record_refusal(conn, snapshot, ready[0][0]["name"], refused)
        for dataset, _ in ready:
            await self._record(conn, snapshot, dataset["id"], "error", None, problem)

    async def _record(
        self,
        conn: AsyncConnection,
        snapshot: SubmissionSnapshot,
        dataset_id: int,
        outcome: str,
        uuid: str | None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        values = {"entity_uuid": uuid, "outcome": outcome, "problem": problem}
        stmt = insert(submission_outcomes).values(
            submission_id=snapshot.submission_id,
            instance_id=snapshot.current_instance_id,
            dataset_id=dataset_id,
            project_id=snapshot.project_id,
            xml_form_id=snapshot.xml_form_id,
            created_at=func.now(),
            **values,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    submission_outcomes.c.submission_id,
                    submission_outcomes.c.instance_id,
                    submission_outcomes.c.dataset_id,
                ],
                set_={**values, "updated_at": func.now()},
            )
        )

    async def convert_pending(self, conn: AsyncConnection, dataset: RowMapping, apply: bool) -> int:
        """Submissions waiting for approval of a list that no longer requires it: applied now, or
        (`apply=False`) left without entities. Returns how many there were."""
        stmt = select(submission_outcomes.c.submission_id).where(
            submission_outcomes.c.dataset_id == dataset["id"], submission_outcomes.c.outcome == "pending"
        )
        pending = [int(r) for r in (await conn.execute(stmt)).scalars().all()]
        for submission_id in pending:
            await conn.execute(
                update(submission_outcomes)
                .where(
                    submission_outcomes.c.submission_id == submission_id,
                    submission_outcomes.c.dataset_id == dataset["id"],
                    submission_outcomes.c.outcome == "pending",
                )
                .values(outcome="skipped", updated_at=func.now())
            )
            snapshot = await read_snapshot(conn, submission_id)
            if snapshot is None or snapshot.deleted_at is not None or snapshot.draft or not apply:
                continue
            declared = (
                (
                    await conn.execute(
                        select(form_defs)
                        .where(
                            form_defs.c.form_def_id == snapshot.form_def_id,
                            form_defs.c.dataset_id == dataset["id"],
                        )
                        .order_by(form_defs.c.entity_path)
                    )
                )
                .mappings()
                .all()
            )
            if declared:
                await self.apply(conn, snapshot, [(dataset, declared)])
        return len(pending)

    async def count_pending(self, conn: AsyncConnection, dataset_id: int) -> int:
        stmt = select(func.count()).where(
            submission_outcomes.c.dataset_id == dataset_id, submission_outcomes.c.outcome == "pending"
        )
        return int((await conn.execute(stmt)).scalar_one())
