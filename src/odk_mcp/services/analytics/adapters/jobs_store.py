"""SQL of `analytics.jobs`: create, claim (FOR UPDATE SKIP LOCKED), heartbeat with progress,
finish (only by the attempt that holds the job), requeue, expire."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

# Every column but the result's bytes: status reads never drag a PDF along.
COLUMNS = """id, handle_hash, actor_id, project_id, xml_form_id, kind, status, stage, steps_done,
    steps_total, attempts, error, result, media_type, octet_length(body) AS size, created_at,
    started_at, heartbeat_at, finished_at, expires_at"""

_START = """UPDATE analytics.jobs SET status = 'running', attempts = attempts + 1, started_at = now(),
    heartbeat_at = now(), stage = 'starting', steps_done = 0, steps_total = NULL"""
_INSERT = f"""INSERT INTO analytics.jobs (id, handle_hash, actor_id, project_id, xml_form_id, kind,
        status, stage, created_at, expires_at)
    VALUES (:id, :hash, :actor, :project, :form, :kind, 'queued', 'queued', now(), now() + :ttl)
    RETURNING {COLUMNS}"""  # noqa: S608 - constant SQL only
_BY_HANDLE = f"SELECT {COLUMNS} FROM analytics.jobs WHERE handle_hash = :hash"  # noqa: S608 - constant SQL only
_BY_ID = f"SELECT {COLUMNS} FROM analytics.jobs WHERE id = :id"  # noqa: S608 - constant SQL only
_START_ONE = f"{_START} WHERE id = :id AND status = 'queued' RETURNING {COLUMNS}"
_CLAIM = f"""{_START}
    WHERE id = (
        SELECT id FROM analytics.jobs
        WHERE (status = 'queued' OR (status = 'running' AND heartbeat_at < now() - :stale))
            AND id <> ALL(CAST(:mine AS uuid[]))
        ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING {COLUMNS}"""  # noqa: S608 - constant SQL only


async def insert(
    conn: AsyncConnection,
    job_id: uuid.UUID,
    handle_hash: str,
    actor_id: int,
    project_id: int,
    xml_form_id: str,
    kind: str,
    ttl: timedelta,
) -> RowMapping:
    values = {
        "id": job_id,
        "hash": handle_hash,
        "actor": actor_id,
        "project": project_id,
        "form": xml_form_id,
        "kind": kind,
        "ttl": ttl,
    }
    return (await conn.execute(text(_INSERT), values)).mappings().one()


async def by_handle(conn: AsyncConnection, handle_hash: str) -> RowMapping | None:
    return (await conn.execute(text(_BY_HANDLE), {"hash": handle_hash})).mappings().first()


async def by_id(conn: AsyncConnection, job_id: uuid.UUID) -> RowMapping | None:
    return (await conn.execute(text(_BY_ID), {"id": job_id})).mappings().first()


async def body(conn: AsyncConnection, job_id: uuid.UUID) -> bytes | None:
    found = await conn.execute(text("SELECT body FROM analytics.jobs WHERE id = :id"), {"id": job_id})
    value = found.scalar()
    return bytes(value) if value is not None else None


async def start(conn: AsyncConnection, job_id: uuid.UUID) -> RowMapping | None:
    """Take one queued job by id (the request that created it runs it at once)."""
    return (await conn.execute(text(_START_ONE), {"id": job_id})).mappings().first()


async def claim(
    conn: AsyncConnection, stale_after: timedelta, mine: Sequence[uuid.UUID] = ()
) -> RowMapping | None:
    """Take the oldest queued job, or a running one whose process stopped beating (crashed);
    never one of `mine` (running here: a late heartbeat is not a dead process)."""
    values = {"stale": stale_after, "mine": list(mine)}
    return (await conn.execute(text(_CLAIM), values)).mappings().first()


async def beat(
    conn: AsyncConnection, job_id: uuid.UUID, attempt: int, stage: str, done: int, total: int | None
) -> None:
    await conn.execute(
        text(
            """UPDATE analytics.jobs SET heartbeat_at = now(), stage = :stage, steps_done = :done,
                steps_total = :total
            WHERE id = :id AND attempts = :attempt AND status = 'running'"""
        ),
        {"id": job_id, "attempt": attempt, "stage": stage, "done": done, "total": total},
    )


async def finish(
    conn: AsyncConnection,
    job_id: uuid.UUID,
    attempt: int,
    status: str,
    ttl: timedelta,
    *,
    result: dict[str, Any] | None = None,
    content: bytes | None = None,
    media_type: str | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """Record the outcome; False when this attempt no longer holds the job (it was presumed
    dead and claimed again), in which case nothing is recorded."""
    found = await conn.execute(
        text(
            """UPDATE analytics.jobs SET status = :status, stage = :status, result = CAST(:result AS jsonb),
                body = :body, media_type = :media, error = CAST(:error AS jsonb), finished_at = now(),
                expires_at = now() + :ttl
            WHERE id = :id AND attempts = :attempt AND status = 'running' RETURNING id"""
        ),
        {
            "status": status,
            "result": None if result is None else json.dumps(result),
            "body": content,
            "media": media_type,
            "error": None if error is None else json.dumps(error),
            "ttl": ttl,
            "id": job_id,
            "attempt": attempt,
        },
    )
    return found.first() is not None


async def requeue(conn: AsyncConnection, job_id: uuid.UUID, attempt: int) -> None:
    """A stopping server gives its job back (the attempt does not count)."""
    await conn.execute(
        text(
            """UPDATE analytics.jobs SET status = 'queued', stage = 'queued', attempts = attempts - 1
            WHERE id = :id AND attempts = :attempt AND status = 'running'"""
        ),
        {"id": job_id, "attempt": attempt},
    )


async def expire(conn: AsyncConnection, now: datetime | None) -> int:
    """Finished (or never started) jobs past their time lose their result."""
    found = await conn.execute(
        text(
            """UPDATE analytics.jobs SET status = 'expired', stage = 'expired', result = NULL, body = NULL
            WHERE status IN ('done', 'failed', 'queued') AND expires_at < COALESCE(:now, now())
            RETURNING id"""
        ),
        {"now": now},
    )
    return len(found.all())
