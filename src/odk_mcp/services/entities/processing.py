"""Entities from submissions: a submission of a form whose definition declares an entity block
creates or updates the entity it names, when it arrives — or when it is approved, for lists
that require approval.

The consumer of `submission.received`, `submission.edited` and `submission.reviewed` runs in
the delivery's transaction and records one outcome per submission version (`created`,
`updated`, `pending`, `error`, `skipped`), which makes it idempotent: a version is applied at
most once, however often its events are delivered. A refused entity (unknown entity, deleted
entity, bad UUID, …) is recorded with Central's problem code and in the audit log
(`entity.error`); it never fails the delivery, since retrying would refuse it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import Event, emit, record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor, ActorType
from odk_mcp.kernel.problems import ProblemType
from odk_mcp.kernel.safe_xml import UnsafeXml, parse_xml
from odk_mcp.services.entities.adapters.tables import (
    datasets,
    entities,
    form_defs,
    submission_outcomes,
    versions,
)
from odk_mcp.services.entities.adapters.writes import Authorship, Branch, Change, add_version, create_entity
from odk_mcp.services.entities.domain.submission import EntityRequest, EntityRequestError, read_entity_request
from odk_mcp.services.entities.domain.versions import PastVersion, conflict_of, worse
from odk_mcp.services.submissions import SubmissionSnapshot, current_xml, read_snapshot

MAX_SUBMISSION_XML_BYTES = 100_000_000


class Refused(Exception):
    """The submission's entity cannot be applied: recorded with this problem."""

    def __init__(self, kind: ProblemType, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Applied:
    outcome: str  # created | updated | skipped
    uuid: str | None


def _submitter(snapshot: SubmissionSnapshot) -> Actor | None:
    """The submitter as the actor of audit rows (only its id is recorded)."""
    if snapshot.submitter_id is None:
        return None
    return Actor(id=snapshot.submitter_id, type=ActorType.USER, display_name="")


class SubmissionEntities:
    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        def_id = event.payload.get("formDefId")
        if def_id is not None and not await self._declares(conn, int(def_id)):
            return  # most forms declare no entities: one indexed lookup, no snapshot
        snapshot = await read_snapshot(conn, int(event.payload["submissionId"]))
        if snapshot is None or snapshot.draft or snapshot.deleted_at is not None:
            return
        declared = (
            (await conn.execute(select(form_defs).where(form_defs.c.form_def_id == snapshot.form_def_id)))
            .mappings()
            .first()
        )
        if declared is None or declared["dataset_id"] is None:
            return
        key = (submission_outcomes.c.submission_id == snapshot.submission_id) & (
            submission_outcomes.c.instance_id == snapshot.current_instance_id
        )
        recorded = (
            await conn.execute(select(submission_outcomes.c.outcome).where(key).with_for_update())
        ).scalar()
        if recorded is not None and recorded != "pending":
            return
        dataset = (
            (
                await conn.execute(
                    select(datasets).where(datasets.c.id == declared["dataset_id"]).with_for_update()
                )
            )
            .mappings()
            .one()
        )
        if dataset["approval_required"] and snapshot.review_state != "approved":
            if recorded is None:
                await self._record(conn, snapshot, dataset["id"], "pending", None)
            return
        await self.apply(conn, snapshot, declared, dataset)

    async def _declares(self, conn: AsyncConnection, def_id: int) -> bool:
        stmt = select(form_defs.c.form_def_id).where(
            form_defs.c.form_def_id == def_id, form_defs.c.dataset_id.is_not(None)
        )
        return (await conn.execute(stmt)).first() is not None

    async def apply(
        self, conn: AsyncConnection, snapshot: SubmissionSnapshot, declared: RowMapping, dataset: RowMapping
    ) -> None:
        """Apply one submission version's entity (the caller holds the list's row lock)."""
        try:
            xml = await current_xml(conn, snapshot.submission_id)
            if xml is None:
                return
            request = read_entity_request(parse_xml(xml, MAX_SUBMISSION_XML_BYTES), declared["saveto"])
            if request is None:
                await self._record(conn, snapshot, dataset["id"], "skipped", None)
                return
            applied = await self._apply(conn, snapshot, declared, dataset, request)
        except (EntityRequestError, UnsafeXml) as exc:
            await self._refuse(conn, snapshot, dataset, Refused(problems.INVALID_ENTITY, str(exc)))
            return
        except Refused as refused:
            await self._refuse(conn, snapshot, dataset, refused)
            return
        await self._record(conn, snapshot, dataset["id"], applied.outcome, applied.uuid)

    async def _apply(
        self,
        conn: AsyncConnection,
        snapshot: SubmissionSnapshot,
        declared: RowMapping,
        dataset: RowMapping,
        request: EntityRequest,
    ) -> Applied:
        if request.dataset != dataset["name"]:
            raise Refused(
                problems.DATASET_NOT_FOUND, f"The dataset ({request.dataset[:100]}) does not exist."
            )
        permitted = set(declared["actions"])
        if not ((request.create and "create" in permitted) or (request.update and "update" in permitted)):
            raise Refused(
                problems.INVALID_ENTITY,
                "The submission attempts an entity action the form does not permit"
                f" ({', '.join(sorted(permitted))}).",
            )
        existing = (
            (await conn.execute(select(entities).where(entities.c.uuid == request.uuid).with_for_update()))
            .mappings()
            .first()
        )
        source = {
            "type": "submission",
            "details": {
                "submissionId": snapshot.submission_id,
                "instanceId": snapshot.current_instance_id,
                "xmlFormId": snapshot.xml_form_id,
                "instanceName": snapshot.instance_name,
            },
        }
        by = Authorship(snapshot.submitter_id, snapshot.user_agent, source)
        branch = Branch(request.branch_id, request.trunk_version, request.base_version)
        if request.update and "update" in permitted and (existing is not None or not request.create):
            return await self._update(conn, snapshot, dataset, request, existing, by, branch)
        return await self._create(conn, snapshot, dataset, request, existing, by, branch)

    async def _create(
        self,
        conn: AsyncConnection,
        snapshot: SubmissionSnapshot,
        dataset: RowMapping,
        request: EntityRequest,
        existing: RowMapping | None,
        by: Authorship,
        branch: Branch,
    ) -> Applied:
        if existing is not None:
            if await self._created_by(conn, existing["id"], snapshot.submission_id):
                return Applied("skipped", request.uuid)  # an edit of the submission that created it
            kind = (
                problems.ENTITY_UUID_DELETED
                if existing["deleted_at"] is not None
                else problems.UNIQUENESS_VIOLATION
            )
            raise Refused(kind, f"An entity with the UUID {request.uuid} already exists.")
        if request.label is None:
            raise Refused(problems.INVALID_ENTITY, "Label empty or missing.")
        change = Change(
            label=request.label,
            data=request.data,
            received=request.data,
            base_version=None,
            branch=branch,
        )
        await create_entity(conn, dataset["id"], request.uuid, change, by)
        await record_audit(
            conn,
            _submitter(snapshot),
            "entity.create",
            "entity",
            request.uuid,
            project_id=dataset["project_id"],
            details={"dataset": dataset["name"], "version": 1, "source": by.source},
        )
        await emit(conn, "entity.created", _event(dataset, request.uuid, 1))
        return Applied("created", request.uuid)

    async def _update(
        self,
        conn: AsyncConnection,
        snapshot: SubmissionSnapshot,
        dataset: RowMapping,
        request: EntityRequest,
        existing: RowMapping | None,
        by: Authorship,
        branch: Branch,
    ) -> Applied:
        if existing is None or existing["dataset_id"] != dataset["id"]:
            raise Refused(problems.ENTITY_NOT_FOUND, f"The entity with UUID ({request.uuid}) does not exist.")
        if existing["deleted_at"] is not None:
            raise Refused(problems.ENTITY_DELETED, f"The entity with UUID ({request.uuid}) has been deleted.")
        current = existing["version"]
        base = request.base_version if request.base_version is not None else current
        if base > current or base < 1:
            raise Refused(problems.ENTITY_VERSION_NOT_FOUND, f"Base version ({base}) does not exist.")
        received: dict[str, str] = dict(request.data)
        if request.label is not None:
            received["label"] = request.label
        since = await self._since(conn, existing["id"], base)
        conflict = conflict_of(base, current, since, frozenset(received), request.branch_id)
        change = Change(
            label=request.label if request.label is not None else existing["label"],
            data={**existing["data"], **request.data},
            received=received,
            base_version=base,
            conflict=worse(existing["conflict"], conflict.kind),
            version_conflict=conflict.kind,
            conflicting=conflict.properties or None,
            branch=branch,
        )
        updated, _ = await add_version(conn, existing, change, by)
        await record_audit(
            conn,
            _submitter(snapshot),
            "entity.update.version",
            "entity",
            request.uuid,
            project_id=dataset["project_id"],
            details={
                "dataset": dataset["name"],
                "version": updated["version"],
                "baseVersion": base,
                "conflict": conflict.kind,
                "source": by.source,
            },
        )
        await emit(conn, "entity.updated", _event(dataset, request.uuid, updated["version"]))
        return Applied("updated", request.uuid)

    async def _since(self, conn: AsyncConnection, entity_id: int, base: int) -> list[PastVersion]:
        stmt = select(versions.c.version, versions.c.data_received, versions.c.branch_id).where(
            versions.c.entity_id == entity_id, versions.c.version > base
        )
        rows = (await conn.execute(stmt)).all()
        return [PastVersion(r.version, frozenset(r.data_received), r.branch_id) for r in rows]

    async def _created_by(self, conn: AsyncConnection, entity_id: int, submission_id: int) -> bool:
        stmt = select(versions.c.source).where(versions.c.entity_id == entity_id, versions.c.version == 1)
        source: dict[str, Any] | None = (await conn.execute(stmt)).scalar()
        details = (source or {}).get("details") or {}
        return (
            source is not None
            and source.get("type") == "submission"
            and details.get("submissionId") == submission_id
        )

    async def _refuse(
        self, conn: AsyncConnection, snapshot: SubmissionSnapshot, dataset: RowMapping, refused: Refused
    ) -> None:
        problem = {"code": refused.kind.code, "name": refused.kind.name, "reason": refused.reason[:1000]}
        await self._record(conn, snapshot, dataset["id"], "error", None, problem)
        await record_audit(
            conn,
            _submitter(snapshot),
            "entity.error",
            "submission",
            snapshot.instance_id,
            project_id=snapshot.project_id,
            details={
                "dataset": dataset["name"],
                "xmlFormId": snapshot.xml_form_id,
                "instanceId": snapshot.current_instance_id,
                "problem": problem,
            },
        )

    async def _record(
        self,
        conn: AsyncConnection,
        snapshot: SubmissionSnapshot,
        dataset_id: int,
        outcome: str,
        uuid: str | None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        values = {"dataset_id": dataset_id, "entity_uuid": uuid, "outcome": outcome, "problem": problem}
        stmt = insert(submission_outcomes).values(
            submission_id=snapshot.submission_id,
            instance_id=snapshot.current_instance_id,
            project_id=snapshot.project_id,
            xml_form_id=snapshot.xml_form_id,
            created_at=func.now(),
            **values,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[submission_outcomes.c.submission_id, submission_outcomes.c.instance_id],
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
                    submission_outcomes.c.outcome == "pending",
                )
                .values(outcome="skipped", updated_at=func.now())
            )
            snapshot = await read_snapshot(conn, submission_id)
            if snapshot is None or snapshot.deleted_at is not None or snapshot.draft or not apply:
                continue
            declared = (
                (await conn.execute(select(form_defs).where(form_defs.c.form_def_id == snapshot.form_def_id)))
                .mappings()
                .one()
            )
            await self.apply(conn, snapshot, declared, dataset)
        return len(pending)

    async def count_pending(self, conn: AsyncConnection, dataset_id: int) -> int:
        stmt = select(func.count()).where(
            submission_outcomes.c.dataset_id == dataset_id, submission_outcomes.c.outcome == "pending"
        )
        return int((await conn.execute(stmt)).scalar_one())


def _event(dataset: RowMapping, uuid: str, version: int) -> dict[str, Any]:
    return {
        "projectId": dataset["project_id"],
        "dataset": dataset["name"],
        "datasetId": dataset["id"],
        "uuid": uuid,
        "version": version,
        "source": "submission",
    }
