"""The backlog of offline updates (Central's `entity_submission_backlog`): an update made in an
offline branch that reaches the server before the update it follows is held (see `actions`),
applied as soon as that predecessor is applied (`submission.backlog.reprocess`), and applied
anyway once it has waited `entity_backlog_wait_hours` (`submission.backlog.force`), by a
periodic sweep of the worker or by `odk-mcp entities process-backlog`.

Each held entity is processed on its own: the other entities of its submission were applied
when it arrived. A held update of a submission edited since is dropped (the edit's own
version is processed through its event).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.safe_xml import UnsafeXml, parse_xml
from odk_mcp.services.entities.actions import Applied, Refused, Target, apply_request, record_refusal
from odk_mcp.services.entities.adapters.tables import backlog, datasets, form_defs, submission_outcomes
from odk_mcp.services.entities.domain.submission import (
    EntityRequest,
    EntityRequestError,
    read_entity_requests,
)
from odk_mcp.services.submissions import current_xml, read_snapshot

log = structlog.get_logger("odk_mcp.entities")

MAX_SUBMISSION_XML_BYTES = 100_000_000


async def _take(conn: AsyncConnection, held: RowMapping, action: str) -> None:
    await conn.execute(delete(backlog).where(backlog.c.id == held["id"]))
    await record_audit(
        conn,
        None,
        f"submission.backlog.{action}",
        "submission",
        held["instance_id"],
        project_id=held["project_id"],
        details={
            "submissionId": held["submission_id"],
            "instanceId": held["instance_id"],
            "entityUuid": str(held["entity_uuid"]),
            "branchId": None if held["branch_id"] is None else str(held["branch_id"]),
            "baseVersion": held["branch_base_version"],
        },
    )


def _find(root: Any, declared: Sequence[RowMapping], uuid: str) -> tuple[RowMapping, EntityRequest] | None:
    """The held entity's request among the submission's blocks of its list."""
    for decl in declared:
        for request in read_entity_requests(root, decl["entity_path"], decl["saveto"]):
            if request.uuid == uuid:
                return decl, request
    return None


async def process_held(conn: AsyncConnection, held: RowMapping, force: bool) -> Applied | None:
    """Apply one held entity of its submission (taken out of the backlog by the caller)."""
    snapshot = await read_snapshot(conn, int(held["submission_id"]))
    if (
        snapshot is None
        or snapshot.deleted_at is not None
        or snapshot.current_instance_id != held["instance_id"]
    ):
        return None
    stmt = select(datasets).where(datasets.c.id == held["dataset_id"]).with_for_update()
    dataset = (await conn.execute(stmt)).mappings().one()
    declared = (
        (
            await conn.execute(
                select(form_defs).where(
                    form_defs.c.form_def_id == snapshot.form_def_id,
                    form_defs.c.dataset_id == held["dataset_id"],
                )
            )
        )
        .mappings()
        .all()
    )
    xml = await current_xml(conn, snapshot.submission_id)
    if xml is None or not declared:
        return None
    applied: Applied | None = None
    try:
        async with conn.begin_nested():
            found = _find(parse_xml(xml, MAX_SUBMISSION_XML_BYTES), declared, str(held["entity_uuid"]))
            if found is None:
                return None
            decl, request = found
            applied = await apply_request(conn, Target(snapshot, dataset, decl, force), request)
    except (EntityRequestError, UnsafeXml) as exc:
        refused = Refused(problems.INVALID_ENTITY, str(exc))
    except Refused as exc:
        refused = exc
    key = (
        (submission_outcomes.c.submission_id == snapshot.submission_id)
        & (submission_outcomes.c.instance_id == snapshot.current_instance_id)
        & (submission_outcomes.c.dataset_id == dataset["id"])
        & (submission_outcomes.c.outcome == "held")
    )
    if applied is None:
        problem = await record_refusal(conn, snapshot, dataset["name"], refused)
        await conn.execute(update(submission_outcomes).where(key).values(outcome="error", problem=problem))
        return None
    if applied.outcome != "held":
        await conn.execute(
            update(submission_outcomes)
            .where(key)
            .values(outcome=applied.outcome, entity_uuid=applied.uuid, updated_at=func.now())
        )
    return applied


async def release_next(conn: AsyncConnection, applied: list[Applied]) -> None:
    """Apply the held updates that were waiting for these (and the ones waiting for those)."""
    queue = [a for a in applied if a.outcome in ("created", "updated")]
    while queue:
        done = queue.pop(0)
        stmt = select(backlog).where(
            backlog.c.entity_uuid == done.uuid,
            backlog.c.branch_base_version == (done.branch_base_version or 0) + 1,
        )
        if done.branch_id is not None:
            stmt = stmt.where(backlog.c.branch_id == done.branch_id)
        # A row the sweep holds is left to it (waiting here could deadlock with its list lock).
        stmt = stmt.order_by(backlog.c.id).limit(1).with_for_update(skip_locked=True)
        held = (await conn.execute(stmt)).mappings().first()
        if held is None:
            continue
        await _take(conn, held, "reprocess")
        following = await process_held(conn, held, force=False)
        if following is None:  # dropped (its submission was edited since) or refused:
            queue.insert(0, done)  # another held update may still follow `done`
        elif following.outcome in ("created", "updated"):
            queue.append(following)


class BacklogSweeper:
    """Force-processes held updates older than the wait, oldest branch position first."""

    def __init__(self, db: Database, wait: timedelta, interval_seconds: float) -> None:
        self._db = db
        self._wait = wait
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def process(self, force_all: bool = False) -> int:
        """Apply held updates past the wait (every one with `force_all`); how many were taken."""
        taken = 0
        while True:
            async with self._db.transaction() as conn:
                stmt = select(backlog)
                if not force_all:
                    stmt = stmt.where(backlog.c.held_at < func.now() - self._wait)
                stmt = stmt.order_by(backlog.c.branch_id, backlog.c.branch_base_version, backlog.c.id).limit(
                    1
                )
                held = (await conn.execute(stmt.with_for_update(skip_locked=True))).mappings().first()
                if held is None:
                    return taken
                await _take(conn, held, "force")
                await process_held(conn, held, force=True)
            taken += 1

    async def _loop(self) -> None:
        while True:
            try:
                taken = await self.process()
                if taken:
                    log.info("entity_backlog_forced", count=taken)
            except Exception:  # a failed sweep is retried at the next interval, never silently
                log.exception("entity_backlog_sweep_failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="entity-backlog-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
