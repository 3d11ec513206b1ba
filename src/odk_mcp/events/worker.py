"""The event worker: claims due deliveries, runs their consumers, retries with backoff.

One batch at a time, the worker claims due pending deliveries of its registry's consumers
(`FOR UPDATE SKIP LOCKED`, so any number of workers share the table without taking the same
row) and marks them running with a lease. The batch is then processed in as few transactions
as its handlers' time allows (one, unless they take longer than half a lease): each
transaction first locks the claims it will process and keeps those still this worker's (same
attempt, still running), then runs them consumer by consumer: a consumer's batch handler once
for all its claims, in one savepoint, or (without one, or when it fails) each handler in its
own savepoint (a failing handler undoes only its own work); it records each failure (pending
again after a backoff, or dead after `max_attempts`) and marks the successful deliveries done
in one statement. One commit per batch, and a few statements per consumer per batch, is what
keeps consumers cheaper than ingestion itself. A woken worker waits `coalesce_seconds` before
claiming, so that a trickle of events makes batches of several rather than one each.

A worker that dies leaves its claims running; once their lease has expired, any worker puts
them back to pending (dead if that was the last attempt). Attempts are counted at claim
time, so a handler that kills its worker every time still ends up dead.

Logs name the event, consumer and error type, never the payload or the error's message
(which may quote the payload); the message is kept in `last_error` for administrators.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog
from sqlalchemy import ARRAY, BigInteger, Integer, Text, bindparam, func, text, tuple_, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events.consumers import ConsumerRegistry, Event
from odk_mcp.events.deliveries import NOTIFY_CHANNEL
from odk_mcp.events.tables import deliveries
from odk_mcp.kernel.db import Database

log = structlog.get_logger("odk_mcp.events")

MAX_ERROR_CHARS = 2000
# The asyncio deadline of a handler falls this long after its statements' timeout.
DEADLINE_MARGIN_SECONDS = 1.0

# Claims whose lease expired (their worker stopped or crashed) go back to pending, or to
# dead when that was the last attempt. Rows a live worker holds locked are skipped.
_RECOVER = text(
    """
    WITH expired AS (
        SELECT event_id, consumer FROM events.deliveries
        WHERE status = 'running' AND locked_until < now() AND consumer = ANY(:consumers)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE events.deliveries AS d
    SET status = CASE WHEN d.attempts >= :max_attempts THEN 'dead' ELSE 'pending' END,
        next_attempt_at = now(), locked_until = NULL, updated_at = now(),
        last_error = 'The lease of attempt ' || d.attempts
            || ' expired before it completed (its worker stopped or crashed).'
    FROM expired
    WHERE d.event_id = expired.event_id AND d.consumer = expired.consumer
    """
).bindparams(bindparam("consumers", type_=ARRAY(Text)))

_CLAIM = text(
    """
    WITH due AS (
        SELECT event_id, consumer FROM events.deliveries
        WHERE status = 'pending' AND next_attempt_at <= now() AND consumer = ANY(:consumers)
        ORDER BY next_attempt_at, event_id
        LIMIT :batch_size
        FOR UPDATE SKIP LOCKED
    )
    UPDATE events.deliveries AS d
    SET status = 'running', attempts = d.attempts + 1, updated_at = now(),
        locked_until = now() + make_interval(secs => :lease_seconds)
    FROM due JOIN events.outbox AS o ON o.id = due.event_id
    WHERE d.event_id = due.event_id AND d.consumer = due.consumer
    RETURNING d.event_id, d.consumer, d.attempts, d.next_attempt_at, o.event, o.payload, o.created_at
    """
).bindparams(bindparam("consumers", type_=ARRAY(Text)))

# The claims still this worker's, locked; and, per row, the transaction's statement timeout
# set to the lease. Keys as arrays: one cached statement whatever the batch size.
_LOCK_OURS = text(
    """
    SELECT d.event_id, d.consumer, set_config('statement_timeout', :timeout, true) AS timeout
    FROM events.deliveries AS d
    JOIN unnest(CAST(:ids AS bigint[]), CAST(:consumers AS text[]), CAST(:attempts AS integer[]))
        AS k(event_id, consumer, attempts)
        ON d.event_id = k.event_id AND d.consumer = k.consumer AND d.attempts = k.attempts
    WHERE d.status = 'running'
    FOR UPDATE OF d
    """
).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("consumers", type_=ARRAY(Text)),
    bindparam("attempts", type_=ARRAY(Integer)),
)

_FINISH = text(
    """
    UPDATE events.deliveries AS d
    SET status = 'done', processed_at = now(), locked_until = NULL, updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:consumers AS text[])) AS k(event_id, consumer)
    WHERE d.event_id = k.event_id AND d.consumer = k.consumer
    """
).bindparams(bindparam("ids", type_=ARRAY(BigInteger)), bindparam("consumers", type_=ARRAY(Text)))


@dataclass(frozen=True)
class Backoff:
    """Delay before the next try after failed attempt n: base * 2^(n-1), capped, jittered
    down by up to half so that deliveries failing together do not retry together."""

    base_seconds: float = 5.0
    max_seconds: float = 3600.0

    def delay(self, attempts: int) -> float:
        exact = min(self.max_seconds, self.base_seconds * 2.0 ** min(max(attempts - 1, 0), 40))
        return exact * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True)
class Claim:
    """A delivery this worker claimed: attempt number `attempts` of `consumer` on `event`."""

    consumer: str
    attempts: int
    due_at: datetime
    event: Event


class EventWorker:
    """Delivers outbox events to the registry's consumers until stopped."""

    def __init__(
        self,
        db: Database,
        registry: ConsumerRegistry,
        batch_size: int = 1000,
        lease_seconds: float = 120.0,
        max_attempts: int = 8,
        backoff: Backoff | None = None,
        poll_seconds: float = 1.0,
        coalesce_seconds: float = 0.0,
    ) -> None:
        self._db = db
        self._registry = registry
        self._batch_size = batch_size
        self._lease_seconds = lease_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._poll_seconds = poll_seconds
        self._coalesce_seconds = coalesce_seconds
        self._recovered_at = -math.inf
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Run `run_forever` in a background task (the in-process worker of `serve`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="event-worker")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Finish the delivery in hand (waiting up to `grace_seconds`) and stop; the rest of
        the batch goes back to pending. A worker does not start again once stopped."""
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except TimeoutError:
            # The interrupted delivery stays running until its lease expires, then is retried.
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def run_forever(self) -> None:
        """Process deliveries until `stop()`: woken by NOTIFY, polling as a fallback."""
        listener = asyncio.create_task(self._listen(), name="event-listener") if self._registry else None
        log.info("event_worker_started", consumers=self._registry.names)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    claimed = await self.run_once()
                except (OSError, SQLAlchemyError) as exc:
                    log.warning("event_worker_database_error", error_type=type(exc).__name__)
                    claimed = 0
                except Exception:
                    # A bug here must not silently end the in-process worker: log, try again.
                    log.exception("event_worker_error")
                    claimed = 0
                if claimed < self._batch_size:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
                    if self._coalesce_seconds > 0 and not self._stopping.is_set():
                        # Let the events of the next few requests join this batch: one batch
                        # of many costs little more than a batch of one.
                        with suppress(TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), self._coalesce_seconds)
        finally:
            if listener is not None:
                listener.cancel()
                with suppress(asyncio.CancelledError):
                    await listener
            log.info("event_worker_stopped")

    async def drain(self) -> int:
        """Process deliveries until none is due; how many were claimed (tests, one-off runs)."""
        total = 0
        while claimed := await self.run_once():
            total += claimed
        return total

    async def run_once(self) -> int:
        """Claim one batch of due deliveries and process it; how many were claimed."""
        if not self._registry:
            return 0
        claims = await self._claim()
        remaining = claims
        while remaining:
            if self._stopping.is_set():
                await self._release(remaining)
                break
            try:
                remaining = await self._deliver_some(remaining)
            except (OSError, SQLAlchemyError) as exc:
                # The claims stay running; once their lease expires a worker retries them.
                log.error(
                    "event_delivery_error",
                    event_id=remaining[0].event.id,
                    consumer=remaining[0].consumer,
                    deliveries=len(remaining),
                    error_type=type(exc).__name__,
                )
                break
        return len(claims)

    # -- one batch ----------------------------------------------------------------------

    async def _claim(self) -> list[Claim]:
        params: dict[str, Any] = {"consumers": self._registry.names}
        now = asyncio.get_running_loop().time()
        async with self._db.transaction() as conn:
            # Expired leases are looked for once per poll interval, not before every batch:
            # under load a batch follows another every few milliseconds.
            if now - self._recovered_at >= self._poll_seconds:
                await conn.execute(_RECOVER, {**params, "max_attempts": self._max_attempts})
                self._recovered_at = now
            rows = (
                await conn.execute(
                    _CLAIM,
                    {**params, "batch_size": self._batch_size, "lease_seconds": self._lease_seconds},
                )
            ).mappings()
            claims = [
                Claim(
                    consumer=row["consumer"],
                    attempts=row["attempts"],
                    due_at=row["next_attempt_at"],
                    event=Event(
                        id=row["event_id"],
                        name=row["event"],
                        payload=row["payload"],
                        created_at=row["created_at"],
                    ),
                )
                for row in rows
            ]
        return sorted(claims, key=lambda c: (c.due_at, c.event.id, c.consumer))

    async def _deliver_some(self, claims: list[Claim]) -> list[Claim]:
        """Process claims in one transaction until done, stopping, or half a lease has passed
        (so no claim waits in the batch past its lease); the claims not reached are returned.

        Claims are taken consumer by consumer: all of a consumer's at once through its batch
        handler when it has one, else (or if that fails) one by one."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        finished: list[Claim] = []
        groups = _by_consumer(claims)
        claims = [claim for group in groups for claim in group]
        reached = 0

        def must_stop() -> bool:
            return reached > 0 and (
                self._stopping.is_set() or loop.time() - started > self._lease_seconds / 2
            )

        async with self._db.transaction() as conn:
            ours = await self._lock_ours(conn, claims)
            for group in groups:
                if must_stop():
                    break
                mine = [c for c in group if (c.event.id, c.consumer) in ours]
                if len(mine) > 1 and await self._run_batch(conn, mine):
                    reached += len(group)
                    finished += mine
                    continue
                for claim in group:
                    if must_stop():
                        break
                    reached += 1
                    if (claim.event.id, claim.consumer) not in ours:
                        log.info(
                            "event_delivery_taken_over", event_id=claim.event.id, consumer=claim.consumer
                        )
                    elif await self._run_handler(conn, claim):
                        finished.append(claim)
            await self._finish(conn, finished)
        return claims[reached:]

    async def _run_batch(self, conn: AsyncConnection, claims: list[Claim]) -> bool:
        """Run one consumer's claims through its batch handler, in one savepoint; False when it
        has none or it failed (undone: the claims are then run one by one)."""
        consumer = self._registry.get(claims[0].consumer)
        if consumer is None or consumer.handle_batch is None:
            return False
        wanted = [c.event for c in claims if c.event.name in consumer.events]
        if not wanted:
            return True
        deadline = asyncio.timeout(self._lease_seconds + DEADLINE_MARGIN_SECONDS)
        try:
            async with conn.begin_nested(), deadline:
                await consumer.handle_batch(conn, wanted)
        except Exception as exc:  # noqa: BLE001 - retried event by event
            log.info(
                "event_batch_failed",
                consumer=consumer.name,
                deliveries=len(wanted),
                error_type=type(exc).__name__,
            )
            return False
        return True

    async def _run_handler(self, conn: AsyncConnection, claim: Claim) -> bool:
        """Run the claim's handler in a savepoint; True when it succeeded, else the failure is
        recorded (in the same transaction) and False."""
        consumer = self._registry.get(claim.consumer)
        if consumer is None or claim.event.name not in consumer.events:
            # Created while the consumer still subscribed to this event: nothing to do.
            return True
        # Stops the handler's other work; its statements stop at the lease (`_lock_ours`).
        deadline = asyncio.timeout(self._lease_seconds + DEADLINE_MARGIN_SECONDS)
        try:
            async with conn.begin_nested(), deadline:
                await consumer.handle(conn, claim.event)
        except Exception as exc:  # noqa: BLE001 - any failure of a consumer is recorded and retried
            if deadline.expired():
                error = f"the handler did not finish within {self._lease_seconds:g} s"
                await self._fail(conn, claim, "TimeoutError", error)
            else:
                cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
                await self._fail(conn, claim, type(cause).__name__, str(cause))
            return False
        return True

    async def _lock_ours(self, conn: AsyncConnection, claims: Sequence[Claim]) -> set[tuple[int, str]]:
        """Lock, for this transaction, the claims still this worker's; their keys.

        In the same round trip, PostgreSQL is told to stop the transaction's statements at
        the lease: a clean error the handler's savepoint undoes (an asyncio cancellation in
        the middle of a statement would leave the connection unusable instead).
        """
        timeout_ms = str(int(self._lease_seconds * 1000))
        rows = await conn.execute(
            _LOCK_OURS,
            {
                "timeout": timeout_ms,
                "ids": [c.event.id for c in claims],
                "consumers": [c.consumer for c in claims],
                "attempts": [c.attempts for c in claims],
            },
        )
        return {(row.event_id, row.consumer) for row in rows}

    async def _finish(self, conn: AsyncConnection, claims: Sequence[Claim]) -> None:
        if not claims:
            return
        await conn.execute(
            _FINISH, {"ids": [c.event.id for c in claims], "consumers": [c.consumer for c in claims]}
        )

    async def _fail(self, conn: AsyncConnection, claim: Claim, error_type: str, message: str) -> None:
        """Back to pending after a backoff, or dead. `message` is kept for administrators but
        never logged: it may quote the payload (and for database errors, the driver's text
        is kept rather than SQLAlchemy's, which adds the statement and its parameters)."""
        dead = claim.attempts >= self._max_attempts
        delay = 0.0 if dead else self._backoff.delay(claim.attempts)
        await conn.execute(
            update(deliveries)
            .where(*_key(claim))
            .values(
                status="dead" if dead else "pending",
                next_attempt_at=func.now() + timedelta(seconds=delay),
                locked_until=None,
                last_error=f"{error_type}: {message}"[:MAX_ERROR_CHARS],
                updated_at=func.now(),
            )
        )
        log.warning(
            "event_delivery_dead" if dead else "event_delivery_failed",
            event_id=claim.event.id,
            event_name=claim.event.name,
            consumer=claim.consumer,
            attempt=claim.attempts,
            error_type=error_type,
            retry_in_seconds=None if dead else round(delay, 3),
        )

    async def _release(self, claims: Sequence[Claim]) -> None:
        """Give claims this worker will not process back, as if never claimed."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(deliveries)
                .where(
                    tuple_(deliveries.c.event_id, deliveries.c.consumer, deliveries.c.attempts).in_(
                        [(c.event.id, c.consumer, c.attempts) for c in claims]
                    ),
                    deliveries.c.status == "running",
                )
                .values(
                    status="pending",
                    attempts=deliveries.c.attempts - 1,
                    locked_until=None,
                    updated_at=func.now(),
                )
            )

    # -- wake-ups -----------------------------------------------------------------------

    async def _listen(self) -> None:
        """Wake the loop on each NOTIFY; on a lost connection, reconnect (polling meanwhile)."""
        _, connect_args = self._db.engine.dialect.create_connect_args(self._db.engine.url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**connect_args, autocommit=True) as conn:
                    await conn.execute("LISTEN " + NOTIFY_CHANNEL)
                    self._wake.set()  # deliveries may have arrived while nobody listened
                    async for _ in conn.notifies():
                        self._wake.set()
            except (OSError, psycopg.Error) as exc:
                log.warning("event_listener_disconnected", error_type=type(exc).__name__)
            await asyncio.sleep(max(self._poll_seconds, 1.0) * 5)


def _by_consumer(claims: Sequence[Claim]) -> list[list[Claim]]:
    """Claims grouped by consumer (in order of first appearance), each group in claim order."""
    groups: dict[str, list[Claim]] = {}
    for claim in claims:
        groups.setdefault(claim.consumer, []).append(claim)
    return list(groups.values())


def _key(claim: Claim) -> tuple[Any, Any]:
    return deliveries.c.event_id == claim.event.id, deliveries.c.consumer == claim.consumer
