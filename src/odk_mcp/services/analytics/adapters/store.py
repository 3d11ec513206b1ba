"""Reading and writing the analytics schema: findings (upserted by fingerprint so a
dismissal survives rescans), project areas and per-form baselines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.services.analytics.adapters.tables import areas, baselines, findings
from odk_mcp.services.analytics.domain.quality.findings import Finding


@dataclass(frozen=True)
class FormRef:
    project_id: int
    form_id: int
    xml_form_id: str


@dataclass(frozen=True)
class StoredFinding:
    id: int
    rule: str
    severity: str
    message: str
    evidence: dict[str, Any]
    submission_id: int | None
    field: str | None
    enumerator: str | None
    source: str
    found_at: datetime
    dismissed_at: datetime | None
    dismissed_by: int | None
    dismissal_comment: str | None


def fingerprint(finding: Finding) -> str:
    """What makes two findings the same one across scans."""
    return "|".join(str(x) for x in (finding.rule, finding.submission_id, finding.field, finding.enumerator))


# Findings travel as arrays: one statement per chunk whatever the number of rows (a full scan
# can find hundreds of thousands; an incremental check's statement stays the same one, prepared
# once, for any batch), unchanged ones are not rewritten, and a full scan's leftovers from the
# previous verdict go in one anti-join.
_SCAN_UPSERT = text(
    """
    INSERT INTO analytics.findings AS f (project_id, form_id, xml_form_id, fingerprint, rule, severity,
        message, evidence, submission_id, field, enumerator, source, found_at)
    SELECT :project_id, :form_id, :xml_form_id, n.fingerprint, n.rule, n.severity, n.message,
        CAST(n.evidence AS jsonb), n.submission_id, n.field, n.enumerator, :source, now()
    FROM unnest(CAST(:fingerprints AS text[]), CAST(:rules AS text[]), CAST(:severities AS text[]),
        CAST(:messages AS text[]), CAST(:evidence AS text[]), CAST(:submission_ids AS bigint[]),
        CAST(:fields AS text[]), CAST(:enumerators AS text[]))
        AS n(fingerprint, rule, severity, message, evidence, submission_id, field, enumerator)
    ON CONFLICT (form_id, fingerprint) DO UPDATE SET severity = excluded.severity,
        message = excluded.message, evidence = excluded.evidence, source = excluded.source
    WHERE (f.severity, f.message, f.evidence, f.source)
        IS DISTINCT FROM (excluded.severity, excluded.message, excluded.evidence, excluded.source)
    """
)
_SCAN_PRUNE = text(
    """
    DELETE FROM analytics.findings f WHERE f.form_id = :form_id
    AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:fingerprints AS text[])) AS k(fingerprint)
                    WHERE k.fingerprint = f.fingerprint)
    """
)
SCAN_CHUNK = 50_000


async def replace_all(conn: AsyncConnection, form: FormRef, found: Sequence[Finding]) -> None:
    """A full scan's verdict: its findings, and no others (dismissals of the kept ones stay)."""
    keep = [fingerprint(f) for f in found]
    await conn.execute(_SCAN_PRUNE, {"form_id": form.form_id, "fingerprints": keep})
    await _upsert(conn, form, found, keep, "scan")


async def _upsert(
    conn: AsyncConnection, form: FormRef, found: Sequence[Finding], keep: Sequence[str], source: str
) -> None:
    ref = {"project_id": form.project_id, "form_id": form.form_id, "xml_form_id": form.xml_form_id}
    for start in range(0, len(found), SCAN_CHUNK):
        chunk = found[start : start + SCAN_CHUNK]
        await conn.execute(
            _SCAN_UPSERT,
            {
                **ref,
                "source": source,
                "fingerprints": list(keep[start : start + SCAN_CHUNK]),
                "rules": [f.rule for f in chunk],
                "severities": [f.severity.value for f in chunk],
                "messages": [f.message for f in chunk],
                "evidence": [json.dumps(f.evidence) for f in chunk],
                "submission_ids": [f.submission_id for f in chunk],
                "fields": [f.field for f in chunk],
                "enumerators": [f.enumerator for f in chunk],
            },
        )


async def replace_for_submissions(
    conn: AsyncConnection,
    form: FormRef,
    submission_ids: Sequence[int],
    rules: Sequence[str],
    found: Sequence[Finding],
) -> None:
    """An incremental check of some submissions: their findings of the rules that were checked."""
    keep = [fingerprint(f) for f in found]
    await conn.execute(
        delete(findings).where(
            findings.c.form_id == form.form_id,
            findings.c.submission_id.in_(list(submission_ids)),
            findings.c.rule.in_(list(rules)),
            findings.c.fingerprint.not_in(keep),
        )
    )
    if found:
        await _upsert(conn, form, found, keep, "incremental")


async def listed(
    conn: AsyncConnection,
    form_id: int,
    submission_id: int | None = None,
    enumerator: str | None = None,
    rule: str | None = None,
    include_dismissed: bool = False,
    limit: int = 1000,
    offset: int = 0,
) -> tuple[int, list[StoredFinding]]:
    conditions = [findings.c.form_id == form_id]
    if submission_id is not None:
        conditions.append(findings.c.submission_id == submission_id)
    if enumerator is not None:
        conditions.append(findings.c.enumerator == enumerator)
    if rule is not None:
        conditions.append(findings.c.rule == rule)
    if not include_dismissed:
        conditions.append(findings.c.dismissed_at.is_(None))
    where = and_(*conditions)
    total = (await conn.execute(select(func.count()).select_from(findings).where(where))).scalar_one()
    rows = await conn.execute(
        select(findings)
        .where(where)
        .order_by(findings.c.submission_id.nulls_first(), findings.c.id)
        .limit(limit)
        .offset(offset)
    )
    return int(total), [_stored(r) for r in rows.mappings()]


async def one(conn: AsyncConnection, form_id: int, finding_id: int) -> StoredFinding | None:
    row = (
        (
            await conn.execute(
                select(findings).where(findings.c.form_id == form_id, findings.c.id == finding_id)
            )
        )
        .mappings()
        .first()
    )
    return _stored(row) if row is not None else None


async def dismiss(
    conn: AsyncConnection, form_id: int, finding_id: int, actor_id: int | None, comment: str
) -> None:
    await conn.execute(
        update(findings)
        .where(findings.c.form_id == form_id, findings.c.id == finding_id)
        .values(dismissed_at=func.now(), dismissed_by=actor_id, dismissal_comment=comment)
    )


def _stored(row: Any) -> StoredFinding:
    return StoredFinding(
        id=row["id"],
        rule=row["rule"],
        severity=row["severity"],
        message=row["message"],
        evidence=row["evidence"],
        submission_id=row["submission_id"],
        field=row["field"],
        enumerator=row["enumerator"],
        source=row["source"],
        found_at=row["found_at"],
        dismissed_at=row["dismissed_at"],
        dismissed_by=row["dismissed_by"],
        dismissal_comment=row["dismissal_comment"],
    )


async def area_of(conn: AsyncConnection, project_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(areas.c.area).where(areas.c.project_id == project_id))).first()
    return dict(row.area) if row is not None else None


async def set_area(conn: AsyncConnection, project_id: int, area: dict[str, Any] | None) -> None:
    if area is None:
        await conn.execute(delete(areas).where(areas.c.project_id == project_id))
        return
    stmt = insert(areas).values(project_id=project_id, area=area, updated_at=func.now())
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[areas.c.project_id], set_={"area": area, "updated_at": func.now()}
        )
    )


async def baseline_of(conn: AsyncConnection, form_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(baselines.c.baseline).where(baselines.c.form_id == form_id))).first()
    return dict(row.baseline) if row is not None else None


async def set_baseline(
    conn: AsyncConnection, form_id: int, submissions: int, baseline: dict[str, Any]
) -> None:
    stmt = insert(baselines).values(
        form_id=form_id, submissions=submissions, baseline=baseline, scanned_at=func.now()
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[baselines.c.form_id],
            set_={"submissions": submissions, "baseline": baseline, "scanned_at": func.now()},
        )
    )
