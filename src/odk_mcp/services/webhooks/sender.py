"""The sender: a background loop that POSTs queued deliveries to their webhooks.

It runs beside the event worker (in `odk-mcp serve`, and in every `odk-mcp worker`),
never in a request: ingestion only writes an event, and the event worker only queues rows.
Each round claims due deliveries and hands each endpoint's share to its own task, which
sends them one after another (so a dead endpoint trips its circuit breaker after a few
attempts, instead of a whole batch failing at once) and records each outcome in its own
short transaction. Rounds do not wait for those tasks: while an endpoint is busy (or slow,
or hanging until the timeout), the next rounds claim only other endpoints' deliveries, so
one bad receiver never holds up the rest. No database connection is held while waiting on
a receiver.

Logs name the delivery, webhook, attempt, HTTP status and error type, never the body,
the secret or the URL (which may carry a token in its query).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial

import httpx
import psycopg
import structlog
from sqlalchemy.exc import SQLAlchemyError

from odk_mcp.events import Backoff
from odk_mcp.infra.sealing import Sealer
from odk_mcp.kernel.db import Database
from odk_mcp.services.webhooks.adapters import queue
from odk_mcp.services.webhooks.adapters.network import TargetRefused, http_client
from odk_mcp.services.webhooks.adapters.queue import Claim
from odk_mcp.services.webhooks.adapters.tables import NOTIFY_CHANNEL
from odk_mcp.services.webhooks.domain.signing import delivery_headers

log = structlog.get_logger("odk_mcp.webhooks")

MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class SenderOptions:
    allow_private: bool = False
    timeout_seconds: float = 10.0
    max_attempts: int = 8
    backoff: Backoff = field(default_factory=lambda: Backoff(base_seconds=10.0))
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 60.0
    batch_size: int = 20
    poll_seconds: float = 1.0

    @property
    def lease_seconds(self) -> float:
        # One endpoint's share of a batch is sent one by one, each within the timeout.
        return self.timeout_seconds * self.batch_size + 30.0


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None
    endpoint_fault: bool = True

    @property
    def delivered(self) -> bool:
        return self.error is None


class Sender:
    """Delivers queued webhook deliveries until stopped."""

    def __init__(self, db: Database, sealer: Sealer, options: SenderOptions) -> None:
        self._db = db
        self._sealer = sealer
        self._options = options
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._busy: dict[str, asyncio.Task[None]] = {}  # origin -> the task sending to it

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self.run_forever(), name="webhook-sender")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Finish the sends in hand (up to `grace_seconds`), then stop; unfinished claims are
        retried by any sender once their lease expires."""
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._busy.values()) if t is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_seconds)
            for unfinished in late:
                # Its claims stay `sending` until their lease expires; then any sender retries them.
                unfinished.cancel()
            for unfinished in late:
                with suppress(asyncio.CancelledError):
                    await unfinished
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def run_forever(self) -> None:
        listener = asyncio.create_task(self._listen(), name="webhook-listener")
        log.info("webhook_sender_started")
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    claimed = await self.run_once()
                except (OSError, SQLAlchemyError) as exc:
                    log.warning("webhook_sender_database_error", error_type=type(exc).__name__)
                    claimed = 0
                except Exception:
                    log.exception("webhook_sender_error")
                    claimed = 0
                if claimed == 0 or len(self._busy) >= self._options.batch_size:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._options.poll_seconds)
        finally:
            listener.cancel()
            with suppress(asyncio.CancelledError):
                await listener
            log.info("webhook_sender_stopped")

    async def drain(self) -> int:
        """Send until nothing is due; how many deliveries were claimed (tests, one-off runs)."""
        total = 0
        while claimed := await self.run_once():
            total += claimed
            await self.settle()
        await self.settle()
        return total

    async def settle(self) -> None:
        """Wait for the sends in flight to finish."""
        while self._busy:
            await asyncio.wait(list(self._busy.values()))

    async def run_once(self) -> int:
        """Claim due deliveries of endpoints not busy here and start sending them (each
        endpoint's share in its own task); how many deliveries were claimed."""
        options = self._options
        room = options.batch_size - len(self._busy)
        if room <= 0:
            return 0
        async with self._db.transaction() as conn:
            claims = await queue.claim(
                conn, room, options.lease_seconds, options.max_attempts, busy=sorted(self._busy)
            )
        by_origin: dict[str, list[Claim]] = defaultdict(list)
        for claim in claims:
            by_origin[claim.origin].append(claim)
        for origin, group in by_origin.items():
            task = asyncio.create_task(self._send_in_turn(group), name=f"webhook-send-{len(self._busy)}")
            self._busy[origin] = task
            task.add_done_callback(partial(self._done, origin))
        return len(claims)

    def _done(self, origin: str, _: asyncio.Task[None]) -> None:
        self._busy.pop(origin, None)
        self._wake.set()  # that endpoint may have more due deliveries

    # -- one endpoint's share of a batch ------------------------------------------------

    async def _send_in_turn(self, claims: list[Claim]) -> None:
        try:
            await self._send_each(claims)
        except Exception:
            # A bug must not pass silently; the claims left `sending` are retried after their lease.
            log.exception("webhook_sender_error")

    async def _send_each(self, claims: list[Claim]) -> None:
        for index, claim in enumerate(claims):
            if self._stopping.is_set():
                await self._release(claims[index:])
                return
            outcome = await self._send(claim)
            try:
                opened = await self._record(claim, outcome)
            except (OSError, SQLAlchemyError) as exc:
                # The claim stays `sending`; once its lease expires it is retried.
                log.error("webhook_record_error", delivery_id=str(claim.id), error_type=type(exc).__name__)
                return
            if opened:
                # The endpoint's breaker just opened: the rest waits for it, without spending attempts.
                await self._release(claims[index + 1 :])
                return

    async def _send(self, claim: Claim) -> Outcome:
        secret = self._sealer.unseal(claim.secret_sealed)
        if secret is None:
            return Outcome(
                None,
                "The webhook's secret cannot be unsealed with this server's key"
                " (ODK_MCP_SECRET_KEY changed?).",
                endpoint_fault=False,
            )
        headers = delivery_headers(secret, int(time.time()), claim.body, str(claim.id), claim.event)
        client = self._http()
        try:
            async with client.stream("POST", claim.url, content=claim.body, headers=headers) as response:
                status = response.status_code
        except httpx.TimeoutException:
            return Outcome(None, f"Timeout: no answer within {self._options.timeout_seconds:g} s.")
        except TargetRefused as exc:
            return Outcome(None, f"Refused: {exc}.")
        except (httpx.HTTPError, OSError) as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        if 200 <= status < 300:
            return Outcome(status, None)
        if 300 <= status < 400:
            return Outcome(status, f"HTTP {status}: redirects are not followed; give the final URL.")
        return Outcome(status, f"HTTP {status}.")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = http_client(self._options.allow_private, self._options.timeout_seconds)
        return self._client

    async def _record(self, claim: Claim, outcome: Outcome) -> bool:
        """Store the outcome; whether the endpoint's breaker is open now."""
        options = self._options
        async with self._db.transaction() as conn:
            if outcome.delivered:
                assert outcome.status is not None
                await queue.record_success(conn, claim, outcome.status)
                log.info(
                    "webhook_delivered",
                    delivery_id=str(claim.id),
                    webhook_id=claim.subscription_id,
                    attempt=claim.attempts,
                    status=outcome.status,
                )
                return False
            last = claim.attempts >= options.max_attempts
            retry_in = None if last else options.backoff.delay(claim.attempts)
            assert outcome.error is not None
            opened = await queue.record_failure(
                conn,
                claim,
                status=outcome.status,
                error=outcome.error[:MAX_ERROR_CHARS],
                retry_in=retry_in,
                endpoint_fault=outcome.endpoint_fault,
                threshold=options.breaker_threshold,
                cooldown_seconds=options.breaker_cooldown_seconds,
            )
        log.warning(
            "webhook_delivery_failed" if last else "webhook_delivery_retrying",
            delivery_id=str(claim.id),
            webhook_id=claim.subscription_id,
            attempt=claim.attempts,
            status=outcome.status,
            retry_in_seconds=None if retry_in is None else round(retry_in, 3),
            endpoint_open=opened,
        )
        return opened

    async def _release(self, claims: list[Claim]) -> None:
        if not claims:
            return
        try:
            async with self._db.transaction() as conn:
                await queue.release(conn, claims)
        except (OSError, SQLAlchemyError) as exc:
            log.error("webhook_release_error", error_type=type(exc).__name__)

    # -- wake-ups -----------------------------------------------------------------------

    async def _listen(self) -> None:
        """Wake the loop when deliveries are queued; on a lost connection, poll meanwhile."""
        _, connect_args = self._db.engine.dialect.create_connect_args(self._db.engine.url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**connect_args, autocommit=True) as conn:
                    await conn.execute("LISTEN " + NOTIFY_CHANNEL)
                    self._wake.set()
                    async for _ in conn.notifies():
                        self._wake.set()
            except (OSError, psycopg.Error) as exc:
                log.warning("webhook_listener_disconnected", error_type=type(exc).__name__)
            await asyncio.sleep(max(self._options.poll_seconds, 1.0) * 5)
