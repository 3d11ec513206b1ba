"""The outgoing queue in SQL: claiming due deliveries, recording outcomes, and the circuit
breaker of each endpoint (origin), all shared safely by any number of senders.

Claims use `FOR UPDATE SKIP LOCKED` and a lease (`locked_until`), like the event worker:
a sender that dies leaves its claims `sending` until the lease expires, then any sender
puts them back to `pending` (or `failed` after the last attempt).

The breaker of an endpoint is a row of `webhooks.endpoints` (no row: closed). Deliveries
to an endpoint that is `open` or `half_open` are not claimed at all, so they wait without
spending attempts. Once an open endpoint's cool-down has passed, one due delivery is
claimed as the probe and the endpoint becomes `half_open`; the probe's outcome closes it
or opens it again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ARRAY, Text, bindparam, func, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.services.webhooks.adapters.tables import deliveries

_RECOVER = text(
    """
    WITH expired AS (
        SELECT id FROM webhooks.deliveries
        WHERE status = 'sending' AND locked_until < now()
        FOR UPDATE SKIP LOCKED
    )
    UPDATE webhooks.deliveries AS d
    SET status = CASE WHEN d.attempts >= :max_attempts THEN 'failed' ELSE 'pending' END,
        next_attempt_at = now(), locked_until = NULL, updated_at = now(),
        last_error = 'The lease of attempt ' || d.attempts
            || ' expired before it completed (its sender stopped or crashed).'
    FROM expired WHERE d.id = expired.id
    """
)

# A half-open endpoint whose probe's lease expired (its sender died) may be probed again.
_RECOVER_PROBES = text(
    """
    UPDATE webhooks.endpoints SET state = 'open', probe_until = NULL, updated_at = now()
    WHERE state = 'half_open' AND probe_until < now()
    """
)

_COOLED = text(
    """
    SELECT origin FROM webhooks.endpoints
    WHERE state = 'open' AND open_until <= now() AND origin <> ALL(:busy)
    ORDER BY open_until
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
).bindparams(bindparam("busy", type_=ARRAY(Text)))

_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id FROM webhooks.deliveries AS d
        JOIN webhooks.subscriptions AS s ON s.id = d.subscription_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND s.active AND s.deleted_at IS NULL AND s.origin <> ALL(:busy)
          AND (CAST(:origin AS text) IS NULL AND NOT EXISTS (
                  SELECT 1 FROM webhooks.endpoints AS e WHERE e.origin = s.origin AND e.state <> 'closed')
               OR s.origin = CAST(:origin AS text))
        ORDER BY d.next_attempt_at, d.created_at
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhooks.deliveries AS d
    SET status = 'sending', attempts = d.attempts + 1, updated_at = now(),
        locked_until = now() + make_interval(secs => :lease_seconds)
    FROM due, webhooks.subscriptions AS s
    WHERE d.id = due.id AND s.id = d.subscription_id
    RETURNING d.id, d.subscription_id, d.event, d.body, d.attempts, s.url, s.origin, s.secret_sealed
    """
).bindparams(bindparam("busy", type_=ARRAY(Text)))

_HALF_OPEN = text(
    """
    UPDATE webhooks.endpoints
    SET state = 'half_open', probe_until = now() + make_interval(secs => :lease_seconds), updated_at = now()
    WHERE origin = :origin
    """
)

_FAILURE = text(
    """
    INSERT INTO webhooks.endpoints AS e (origin, state, consecutive_failures, open_until, updated_at)
    VALUES (:origin,
            CASE WHEN :threshold <= 1 THEN 'open' ELSE 'closed' END,
            1,
            CASE WHEN :threshold <= 1 THEN now() + make_interval(secs => :cooldown) END,
            now())
    ON CONFLICT (origin) DO UPDATE SET
        consecutive_failures = e.consecutive_failures + 1,
        state = CASE WHEN e.state = 'half_open' OR e.consecutive_failures + 1 >= :threshold
                     THEN 'open' ELSE e.state END,
        open_until = CASE WHEN e.state = 'half_open' OR e.consecutive_failures + 1 >= :threshold
                          THEN now() + make_interval(secs => :cooldown) ELSE e.open_until END,
        probe_until = NULL,
        updated_at = now()
    RETURNING state
    """
)

_SUCCESS = text(
    """
    UPDATE webhooks.endpoints
    SET state = 'closed', consecutive_failures = 0, open_until = NULL, probe_until = NULL, updated_at = now()
    WHERE origin = :origin AND (state <> 'closed' OR consecutive_failures <> 0)
    """
)


@dataclass(frozen=True)
class Claim:
    """Attempt number `attempts` of a delivery, with what sending it needs."""

    id: uuid.UUID
    subscription_id: int
    event: str
    body: bytes
    attempts: int
    url: str
    origin: str
    secret_sealed: str


def _claims(rows: Any) -> list[Claim]:
    return [
        Claim(
            id=row["id"],
            subscription_id=row["subscription_id"],
            event=row["event"],
            body=bytes(row["body"]),
            attempts=row["attempts"],
            url=row["url"],
            origin=row["origin"],
            secret_sealed=row["secret_sealed"],
        )
        for row in rows.mappings()
    ]


async def claim(
    conn: AsyncConnection, limit: int, lease_seconds: float, max_attempts: int, busy: list[str]
) -> list[Claim]:
    """Recover expired claims, pick one probe per cooled-down endpoint, then due deliveries
    to closed endpoints, up to `limit` in all; none to the `busy` origins (those the caller
    is still sending to, so that one slow endpoint never holds up the others)."""
    await conn.execute(_RECOVER, {"max_attempts": max_attempts})
    await conn.execute(_RECOVER_PROBES)
    claims: list[Claim] = []
    for origin in (await conn.execute(_COOLED, {"limit": limit, "busy": busy})).scalars().all():
        params = {"origin": origin, "limit": 1, "lease_seconds": lease_seconds, "busy": busy}
        probe = _claims(await conn.execute(_CLAIM, params))
        if probe:
            await conn.execute(_HALF_OPEN, {"origin": origin, "lease_seconds": lease_seconds})
            claims += probe
    if len(claims) < limit:
        params = {"origin": None, "limit": limit - len(claims), "lease_seconds": lease_seconds, "busy": busy}
        claims += _claims(await conn.execute(_CLAIM, params))
    return claims


def _ours(claim: Claim) -> Any:
    return (
        deliveries.c.id == claim.id,
        deliveries.c.status == "sending",
        deliveries.c.attempts == claim.attempts,
    )


async def record_success(conn: AsyncConnection, claim: Claim, status: int) -> None:
    await conn.execute(
        update(deliveries)
        .where(*_ours(claim))
        .values(
            status="delivered",
            last_status=status,
            last_error=None,
            locked_until=None,
            delivered_at=func.now(),
            updated_at=func.now(),
        )
    )
    await conn.execute(_SUCCESS, {"origin": claim.origin})


async def record_failure(
    conn: AsyncConnection,
    claim: Claim,
    *,
    status: int | None,
    error: str,
    retry_in: float | None,
    endpoint_fault: bool,
    threshold: int,
    cooldown_seconds: float,
) -> bool:
    """Record a failed attempt (retry after `retry_in` seconds, or failed for None); count
    it against the endpoint when it is the endpoint's fault. Whether the endpoint is open now."""
    await conn.execute(
        update(deliveries)
        .where(*_ours(claim))
        .values(
            status="failed" if retry_in is None else "pending",
            next_attempt_at=func.now() if retry_in is None else func.now() + timedelta(seconds=retry_in),
            last_status=status,
            last_error=error,
            locked_until=None,
            updated_at=func.now(),
        )
    )
    if not endpoint_fault:
        return False
    state = (
        await conn.execute(
            _FAILURE, {"origin": claim.origin, "threshold": threshold, "cooldown": cooldown_seconds}
        )
    ).scalar_one()
    return bool(state == "open")


async def release(conn: AsyncConnection, claims: list[Claim]) -> None:
    """Give claims back unsent, as if never claimed (their endpoint opened meanwhile)."""
    for claim in claims:
        await conn.execute(
            update(deliveries)
            .where(*_ours(claim))
            .values(status="pending", attempts=claim.attempts - 1, locked_until=None, updated_at=func.now())
        )
