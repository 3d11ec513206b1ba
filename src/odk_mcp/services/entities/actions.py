"""One entity request of a submission applied to its list: a creation, an update, or — for an
offline update whose predecessor in its branch has not arrived — a hold in the backlog.

Offline updates (spec 2024.1) carry `branchId`, `trunkVersion` and `baseVersion`, where
`baseVersion` counts in the device's own branch. The server version an update builds on is
found as Central finds it: version 1, or the trunk version at the start of a branch, or else the
version the branch's previous update made (`branch_base_version = baseVersion - 1`). When that
version is missing, the update waits in the backlog; when it is forced past the wait, it builds
on the current version, and an update of an entity that never arrived creates it (its source
marked `forceProcessed`, so that the late creation is then applied as an update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import emit, record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor, ActorType
from odk_mcp.kernel.problems import ProblemType
from odk_mcp.services.entities.adapters.tables import backlog, entities, versions
from odk_mcp.services.entities.adapters.writes import Authorship, Branch, Change, add_version, create_entity
from odk_mcp.services.entities.domain.submission import EntityRequest
from odk_mcp.services.entities.domain.versions import Conflict, PastVersion, conflict_of, worse
from odk_mcp.services.submissions import SubmissionSnapshot

AUTO_LABEL = "auto generated"  # Central's label for an entity a forced update had to create


class Refused(Exception):
    """The submission's entity cannot be applied: recorded with this problem."""

    def __init__(self, kind: ProblemType, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.dataset: str | None = None
        self.request: EntityRequest | None = None


@dataclass(frozen=True)
class Applied:
    outcome: str  # created | updated | skipped | held
    uuid: str
    branch_id: str | None = None
    branch_base_version: int | None = None


def submitter(snapshot: SubmissionSnapshot) -> Actor | None:
    """The submitter as the actor of audit rows (only its id is recorded)."""
    if snapshot.submitter_id is None:
        return None
    return Actor(id=snapshot.submitter_id, type=ActorType.USER, display_name="")


def _source(snapshot: SubmissionSnapshot, forced: bool) -> dict[str, Any]:
    source: dict[str, Any] = {
        "type": "submission",
        "details": {
            "submissionId": snapshot.submission_id,
            "instanceId": snapshot.current_instance_id,
            "xmlFormId": snapshot.xml_form_id,
            "instanceName": snapshot.instance_name,
        },
    }
    if forced:
        source["forceProcessed"] = True
    return source


def _event(dataset: RowMapping, uuid: str, version: int) -> dict[str, Any]:
    return {
        "projectId": dataset["project_id"],
        "dataset": dataset["name"],
        "datasetId": dataset["id"],
        "uuid": uuid,
        "version": version,
        "source": "submission",
    }


@dataclass(frozen=True)
class Target:
    """What a request is applied within: the submission version, its list and declaration."""

    snapshot: SubmissionSnapshot
    dataset: RowMapping
    declared: RowMapping
    force: bool = False


async def apply_request(conn: AsyncConnection, target: Target, request: EntityRequest) -> Applied:
    """Apply one entity request (the caller holds the list's row lock)."""
    dataset = target.dataset
    if request.dataset != dataset["name"]:
        raise Refused(problems.DATASET_NOT_FOUND, f"The dataset ({request.dataset[:100]}) does not exist.")
    permitted = set(target.declared["actions"])
    wants_create = request.create and "create" in permitted
    wants_update = request.update and "update" in permitted
    if not (wants_create or wants_update):
        raise Refused(
            problems.INVALID_ENTITY,
            "The submission attempts an entity action the form does not permit"
            f" ({', '.join(sorted(permitted))}).",
        )
    stmt = select(entities).where(entities.c.uuid == request.uuid).with_for_update()
    existing = (await conn.execute(stmt)).mappings().first()
    ours = existing is not None and existing["dataset_id"] == dataset["id"]
    if wants_update and existing is not None and ours:
        if existing["deleted_at"] is not None:
            raise Refused(problems.ENTITY_DELETED, f"The entity with UUID ({request.uuid}) has been deleted.")
        return await _update(conn, target, request, existing)
    if wants_create:
        return await _create(conn, target, request, existing, forced_from_update=False)
    if existing is None and target.force:
        return await _create(conn, target, request, None, forced_from_update=True)
    if existing is None and request.branch_id is not None and request.base_version is not None:
        return await hold(conn, target, request)  # the offline creation may still arrive
    raise Refused(problems.ENTITY_NOT_FOUND, f"The entity with UUID ({request.uuid}) does not exist.")


def _branch(request: EntityRequest) -> Branch:
    # Central keeps the branch's own base version only for updates made in a branch.
    bbv = request.base_version if request.branch_id is not None else None
    return Branch(request.branch_id, request.trunk_version, bbv)


async def _create(
    conn: AsyncConnection,
    target: Target,
    request: EntityRequest,
    existing: RowMapping | None,
    forced_from_update: bool,
) -> Applied:
    snapshot, dataset = target.snapshot, target.dataset
    if existing is not None:
        if await _created_by(conn, existing["id"], snapshot.submission_id):
            return Applied("skipped", request.uuid)  # an edit of the submission that created it
        same_list = existing["dataset_id"] == dataset["id"] and existing["deleted_at"] is None
        if same_list and await _force_created(conn, existing["id"]):
            return await _update(conn, target, request, existing, as_create=True)
        kind = (
            problems.ENTITY_UUID_DELETED
            if existing["deleted_at"] is not None
            else problems.UNIQUENESS_VIOLATION
        )
        raise Refused(kind, f"An entity with the UUID {request.uuid} already exists.")
    label = request.label
    if label is None:
        if not forced_from_update:
            raise Refused(problems.INVALID_ENTITY, "Label empty or missing.")
        label = AUTO_LABEL
    branch = _branch(request) if forced_from_update else Branch(request.branch_id, request.trunk_version)
    by = Authorship(snapshot.submitter_id, snapshot.user_agent, _source(snapshot, forced_from_update))
    change = Change(label=label, data=request.data, received=request.data, base_version=None, branch=branch)
    await create_entity(conn, dataset["id"], request.uuid, change, by)
    await record_audit(
        conn,
        submitter(snapshot),
        "entity.create",
        "entity",
        request.uuid,
        project_id=dataset["project_id"],
        details={"dataset": dataset["name"], "version": 1, "source": by.source},
    )
    await emit(conn, "entity.created", _event(dataset, request.uuid, 1))
    return Applied("created", request.uuid, branch.branch_id, branch.branch_base_version)


async def _server_base(
    conn: AsyncConnection, existing: RowMapping, request: EntityRequest, force: bool
) -> int | None:
    """The server version the update builds on; None when it must wait in the backlog."""
    current: int = existing["version"]
    asked = request.base_version
    if request.branch_id is None or asked is None:
        base = asked if asked is not None else current  # no baseVersion: an online update
        if base < 1 or base > current:
            raise Refused(problems.ENTITY_VERSION_NOT_FOUND, f"Base version ({base}) does not exist.")
        return base
    found: int | None
    if asked in (1, request.trunk_version):  # the start of the branch: a trunk version
        found = asked if 1 <= asked <= current else None
    else:  # the middle of the branch: the version its previous update made
        stmt = select(versions.c.version).where(
            versions.c.entity_id == existing["id"],
            versions.c.branch_id == request.branch_id,
            versions.c.branch_base_version == asked - 1,
        )
        found = (await conn.execute(stmt)).scalars().first()
    if found is None and force:
        return current
    return found


async def _update(
    conn: AsyncConnection,
    target: Target,
    request: EntityRequest,
    existing: RowMapping,
    as_create: bool = False,
) -> Applied:
    snapshot, dataset = target.snapshot, target.dataset
    current = existing["version"]
    if request.trunk_version is not None and request.trunk_version > current:
        raise Refused(
            problems.ENTITY_VERSION_NOT_FOUND,
            f"Base version (trunkVersion={request.trunk_version}) does not exist.",
        )
    received: dict[str, str] = dict(request.data)
    if request.label is not None:
        received["label"] = request.label
    if as_create:  # a late creation after a forced update: compared with what the entity holds
        base = current
        now = {**existing["data"], "label": existing["label"]}
        clashing = tuple(sorted(k for k, v in received.items() if now.get(k) != v))
        conflict = Conflict("hard" if clashing else "soft", clashing)
    else:
        found = await _server_base(conn, existing, request, target.force)
        if found is None:
            return await hold(conn, target, request)
        base = found
        if base != current:
            since = await _since(conn, existing["id"], base)
            conflict = conflict_of(base, current, since, frozenset(received), request.branch_id)
        elif await _interrupted(conn, existing["id"], request):
            conflict = Conflict("soft", ())
        else:
            conflict = Conflict(None, ())
    branch = _branch(request)
    by = Authorship(snapshot.submitter_id, snapshot.user_agent, _source(snapshot, target.force))
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
        submitter(snapshot),
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
    return Applied("updated", request.uuid, branch.branch_id, branch.branch_base_version)


async def hold(conn: AsyncConnection, target: Target, request: EntityRequest) -> Applied:
    """Keep an offline update whose predecessor has not arrived (`submission.backlog.hold`)."""
    snapshot, dataset = target.snapshot, target.dataset
    stmt = insert(backlog).values(
        submission_id=snapshot.submission_id,
        instance_id=snapshot.current_instance_id,
        project_id=snapshot.project_id,
        xml_form_id=snapshot.xml_form_id,
        dataset_id=dataset["id"],
        entity_uuid=request.uuid,
        branch_id=request.branch_id,
        branch_base_version=request.base_version,
    )
    await conn.execute(stmt.on_conflict_do_nothing())
    await record_audit(
        conn,
        submitter(snapshot),
        "submission.backlog.hold",
        "submission",
        snapshot.instance_id,
        project_id=snapshot.project_id,
        details={
            "submissionId": snapshot.submission_id,
            "instanceId": snapshot.current_instance_id,
            "dataset": dataset["name"],
            "entityUuid": request.uuid,
            "branchId": request.branch_id,
            "baseVersion": request.base_version,
        },
    )
    return Applied("held", request.uuid)


async def _since(conn: AsyncConnection, entity_id: int, base: int) -> list[PastVersion]:
    stmt = select(versions.c.version, versions.c.data_received, versions.c.branch_id).where(
        versions.c.entity_id == entity_id, versions.c.version > base
    )
    rows = (await conn.execute(stmt)).all()
    return [PastVersion(r.version, frozenset(r.data_received), r.branch_id) for r in rows]


async def _interrupted(conn: AsyncConnection, entity_id: int, request: EntityRequest) -> bool:
    """Another writer made a version after this branch's trunk: a soft conflict even when the
    update builds on the current version (Central's interrupted branch)."""
    if request.branch_id is None:
        return False
    stmt = (
        select(versions.c.version)
        .where(
            versions.c.entity_id == entity_id,
            versions.c.version > (request.trunk_version or 1),
            versions.c.branch_id.is_distinct_from(request.branch_id),
        )
        .limit(1)
    )
    return (await conn.execute(stmt)).first() is not None


async def _root_source(conn: AsyncConnection, entity_id: int) -> dict[str, Any]:
    stmt = select(versions.c.source).where(versions.c.entity_id == entity_id, versions.c.version == 1)
    source: dict[str, Any] | None = (await conn.execute(stmt)).scalar()
    return source or {}


async def _created_by(conn: AsyncConnection, entity_id: int, submission_id: int) -> bool:
    source = await _root_source(conn, entity_id)
    details = source.get("details") or {}
    return source.get("type") == "submission" and details.get("submissionId") == submission_id


async def _force_created(conn: AsyncConnection, entity_id: int) -> bool:
    return bool((await _root_source(conn, entity_id)).get("forceProcessed"))


async def record_refusal(
    conn: AsyncConnection, snapshot: SubmissionSnapshot, dataset: str, refused: Refused
) -> dict[str, Any]:
    """`entity.error` on the submission, naming the list and the entity that was refused."""
    problem: dict[str, Any] = {
        "code": refused.kind.code,
        "name": refused.kind.name,
        "reason": refused.reason[:1000],
    }
    details: dict[str, Any] = {
        "dataset": refused.dataset or dataset,
        "xmlFormId": snapshot.xml_form_id,
        "instanceId": snapshot.current_instance_id,
        "problem": problem,
    }
    if refused.request is not None:
        details["entityUuid"] = refused.request.uuid
        if refused.request.path:
            details["repeatPath"] = f"/{refused.request.path}/"
            details["position"] = refused.request.position
    await record_audit(
        conn,
        submitter(snapshot),
        "entity.error",
        "submission",
        snapshot.instance_id,
        project_id=snapshot.project_id,
        details=details,
    )
    return problem
