"""`GET /v1/audits`: the audit log, for administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from fastapi import APIRouter, Query, Request

from odk_mcp.events.audit import AuditLog
from odk_mcp.kernel.web import CurrentActor

router = APIRouter(tags=["audits"])


@router.get("/v1/audits")
async def list_audits(
    request: Request,
    actor: CurrentActor,
    action: str | None = Query(default=None, max_length=200),
    start: datetime | None = Query(default=None),
    end: datetime | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=2**63 - 1),  # PostgreSQL OFFSET is a bigint
) -> list[dict[str, Any]]:
    log = cast(AuditLog, request.app.state.audit_log)
    entries = await log.query(actor, action=action, start=start, end=end, limit=limit, offset=offset)
    return [e.to_json() for e in entries]
