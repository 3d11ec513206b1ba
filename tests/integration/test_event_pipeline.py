"""The event pipeline on real PostgreSQL: every committed event reaches each subscribed
consumer once, failures are retried with backoff and end dead, dead deliveries are visible to
administrators and can be redriven, and concurrent or crashed workers never double-process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from structlog.testing import capture_logs
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.events import Backoff, Consumer, ConsumerRegistry, Event, EventWorker, emit
from odk_mcp.kernel.db import Database

NO_WAIT = Backoff(base_seconds=0.0)


class Recorder:
    """A consumer writing each event it handles to a table with one row per (consumer, event),
    after failing the first `failures` tries of each event (all of them with `failures=-1`)."""

    def __init__(self, name: str, events: Iterable[str], failures: int = 0) -> None:
        self.name = name
        self.events = frozenset(events)
        self.failures = failures
        self.calls: list[int] = []  # event ids, one per handler call, committed or not

    def consumer(self) -> Consumer:
        return Consumer(self.name, self.events, self.handle)

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        self.calls.append(event.id)
        await conn.execute(
            text("INSERT INTO pipeline_test.received (consumer, event_id) VALUES (:c, :e)"),
            {"c": self.name, "e": event.id},
        )
        if self.failures < 0 or self.calls.count(event.id) <= self.failures:
            # After a write, which the savepoint must undo.
            raise RuntimeError(f"cannot handle event {event.id} with {event.payload}")


@pytest.fixture
async def db(container: Container) -> Database:
    async with container.db.transaction() as conn:
        await conn.execute(text("CREATE SCHEMA pipeline_test"))
        await conn.execute(
            text(
                "CREATE TABLE pipeline_test.received (consumer text NOT NULL, event_id bigint NOT NULL,"
                " UNIQUE (consumer, event_id))"
            )
        )
    return container.db


MakeWorker = Callable[..., Awaitable[EventWorker]]


@pytest.fixture
def make_worker(db: Database) -> MakeWorker:
    """Subscribe the recorders and build a worker for them (no retry delay unless given)."""

    async def make(*recorders: Recorder, on: Database | None = None, **options: Any) -> EventWorker:
        registry = ConsumerRegistry(r.consumer() for r in recorders)
        await registry.sync(on or db)
        options.setdefault("backoff", NO_WAIT)
        return EventWorker(on or db, registry, **options)

    return make


async def emit_events(db: Database, *names: str, payload: dict[str, Any] | None = None) -> None:
    async with db.transaction() as conn:
        for name in names:
            await emit(conn, name, payload or {"n": 1})


async def received(db: Database) -> Counter[tuple[str, int]]:
    async with db.read() as conn:
        rows = await conn.execute(text("SELECT consumer, event_id FROM pipeline_test.received"))
        return Counter((row.consumer, row.event_id) for row in rows)


async def deliveries(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            text(
                "SELECT d.event_id, o.event, d.consumer, d.status, d.attempts, d.last_error,"
                " d.next_attempt_at, d.processed_at"
                " FROM events.deliveries d JOIN events.outbox o ON o.id = d.event_id"
                " ORDER BY d.event_id, d.consumer"
            )
        )
        return [dict(row) for row in rows.mappings()]


async def outbox_ids(db: Database, event: str) -> list[int]:
    async with db.read() as conn:
        rows = await conn.execute(
            text("SELECT id FROM events.outbox WHERE event = :e ORDER BY id"), {"e": event}
        )
        return list(rows.scalars())


# -- delivery -----------------------------------------------------------------------------


async def test_every_event_reaches_each_subscribed_consumer_exactly_once(
    db: Database, make_worker: MakeWorker
) -> None:
    both = Recorder("both", {"thing.created", "thing.updated"})
    created_only = Recorder("created_only", {"thing.created"})
    worker = await make_worker(both, created_only, batch_size=3)

    await emit_events(db, *["thing.created"] * 5, *["thing.updated"] * 3, "other.event")
    assert await worker.drain() == 13

    created, updated = await outbox_ids(db, "thing.created"), await outbox_ids(db, "thing.updated")
    expected = Counter({("both", i): 1 for i in created + updated}) + Counter(
        {("created_only", i): 1 for i in created}
    )
    assert await received(db) == expected
    assert sorted(both.calls) == sorted(created + updated)
    assert sorted(created_only.calls) == created
    rows = await deliveries(db)
    assert len(rows) == 13, "no delivery for an event nobody subscribed to"
    assert {(r["status"], r["attempts"]) for r in rows} == {("done", 1)}
    assert all(r["processed_at"] is not None for r in rows)
    assert await worker.drain() == 0


async def test_an_event_whose_transaction_rolled_back_is_never_delivered(
    db: Database, make_worker: MakeWorker
) -> None:
    recorder = Recorder("r", {"thing.created"})
    worker = await make_worker(recorder)

    async def command_failing_after_emit() -> None:
        async with db.transaction() as conn:
            await emit(conn, "thing.created", {"kept": False})
            raise RuntimeError("the command failed after emitting")

    with pytest.raises(RuntimeError):
        await command_failing_after_emit()
    await emit_events(db, "thing.created", payload={"kept": True})

    assert await worker.drain() == 1
    rows = await deliveries(db)
    assert [r["status"] for r in rows] == ["done"]
    assert recorder.calls == await outbox_ids(db, "thing.created")


async def test_events_before_a_subscription_are_not_backfilled(db: Database, make_worker: MakeWorker) -> None:
    await emit_events(db, "thing.created")
    recorder = Recorder("late", {"thing.created"})
    worker = await make_worker(recorder)
    await emit_events(db, "thing.created")

    assert await worker.drain() == 1
    assert recorder.calls == (await outbox_ids(db, "thing.created"))[1:]


async def test_sync_replaces_a_consumers_old_subscriptions_and_leaves_others_alone(
    db: Database, make_worker: MakeWorker
) -> None:
    await make_worker(Recorder("a", {"old.event", "kept.event"}), Recorder("b", {"old.event"}))
    await make_worker(Recorder("a", {"kept.event", "new.event"}))

    async with db.read() as conn:
        rows = await conn.execute(text("SELECT consumer, event FROM events.subscriptions ORDER BY 1, 2"))
        assert [tuple(r) for r in rows] == [("a", "kept.event"), ("a", "new.event"), ("b", "old.event")]


# -- failures -----------------------------------------------------------------------------


async def test_a_handler_failing_n_times_is_delivered_once_on_attempt_n_plus_one(
    db: Database, make_worker: MakeWorker
) -> None:
    recorder = Recorder("flaky", {"thing.created"}, failures=2)
    worker = await make_worker(recorder)
    await emit_events(db, "thing.created")

    await worker.drain()

    [event_id] = await outbox_ids(db, "thing.created")
    assert recorder.calls == [event_id] * 3
    assert await received(db) == Counter({("flaky", event_id): 1}), "the failed tries' writes were undone"
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("done", 3)
    assert row["last_error"].startswith("RuntimeError: cannot handle event")


async def test_a_batch_commits_once_and_a_failing_handler_undoes_only_its_own_work(
    db: Database, make_worker: MakeWorker
) -> None:
    good = Recorder("good", {"thing.created"})
    flaky = Recorder("flaky", {"thing.created"}, failures=1)
    worker = await make_worker(good, flaky, batch_size=20, backoff=Backoff(base_seconds=3600))
    await emit_events(db, *["thing.created"] * 5)
    commits = 0

    def count(_: object) -> None:
        nonlocal commits
        commits += 1

    sqlalchemy_event.listen(db.engine.sync_engine, "commit", count)
    try:
        assert await worker.run_once() == 10
    finally:
        sqlalchemy_event.remove(db.engine.sync_engine, "commit", count)

    # One transaction claimed the ten deliveries and one processed them all.
    assert commits == 2
    ids = await outbox_ids(db, "thing.created")
    assert await received(db) == Counter({("good", i): 1 for i in ids}), "flaky's writes were undone"
    states = {(r["consumer"], r["event_id"]): (r["status"], r["attempts"]) for r in await deliveries(db)}
    assert states == {
        **{("good", i): ("done", 1) for i in ids},
        **{("flaky", i): ("pending", 1) for i in ids},
    }


async def test_a_failed_delivery_waits_out_its_backoff(db: Database, make_worker: MakeWorker) -> None:
    recorder = Recorder("flaky", {"thing.created"}, failures=1)
    worker = await make_worker(recorder, backoff=Backoff(base_seconds=60.0))
    await emit_events(db, "thing.created")
    before = datetime.now(UTC)

    assert await worker.drain() == 1

    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    # 60 s for the first retry, jittered down by at most half.
    assert before + timedelta(seconds=29) < row["next_attempt_at"] < before + timedelta(seconds=61)
    assert len(recorder.calls) == 1


async def test_a_handler_that_always_fails_ends_dead_and_never_logs_the_payload(
    db: Database, make_worker: MakeWorker
) -> None:
    recorder = Recorder("broken", {"thing.created"}, failures=-1)
    worker = await make_worker(recorder, max_attempts=3)
    await emit_events(db, "thing.created", payload={"password": "hunter2-secret"})

    with capture_logs() as logs:
        await worker.drain()

    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert "hunter2-secret" in row["last_error"], "administrators see the whole error"
    assert len(recorder.calls) == 3
    assert [entry["event"] for entry in logs] == ["event_delivery_failed"] * 2 + ["event_delivery_dead"]
    assert logs[-1]["error_type"] == "RuntimeError"
    assert "hunter2-secret" not in repr(logs)
    assert await worker.drain() == 0


@pytest.mark.parametrize(
    ("slow_part", "error"),
    [
        ("SELECT pg_sleep(5)", "QueryCanceled: canceling statement due to statement timeout"),
        (None, "TimeoutError: the handler did not finish within 0.5 s"),
    ],
)
async def test_a_handler_overrunning_its_lease_fails_and_is_retried(
    db: Database, slow_part: str | None, error: str
) -> None:
    calls: list[int] = []

    async def slow_then_fine(conn: AsyncConnection, event: Event) -> None:
        calls.append(event.id)
        await conn.execute(text("INSERT INTO pipeline_test.received VALUES ('slow', :e)"), {"e": event.id})
        if len(calls) == 1:
            if slow_part is not None:
                await conn.execute(text(slow_part))
            else:
                await asyncio.sleep(5)

    registry = ConsumerRegistry([Consumer("slow", frozenset({"thing.created"}), slow_then_fine)])
    await registry.sync(db)
    worker = EventWorker(db, registry, lease_seconds=0.5, backoff=NO_WAIT)
    await emit_events(db, "thing.created")

    await worker.drain()

    [row] = await deliveries(db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("done", 2, error)
    assert await received(db) == Counter({("slow", row["event_id"]): 1})


# -- crashed and concurrent workers -------------------------------------------------------


async def test_a_crashed_workers_claim_is_retried_once_its_lease_expires(
    db: Database, make_worker: MakeWorker
) -> None:
    recorder = Recorder("r", {"thing.created"})
    worker = await make_worker(recorder, max_attempts=3)
    await emit_events(db, "thing.created", "thing.created")
    crashed = (await outbox_ids(db, "thing.created"))[0]
    async with db.transaction() as conn:
        # As a worker that died mid-delivery leaves its claims (expired), and a live one (not).
        await conn.execute(
            text(
                "UPDATE events.deliveries SET status = 'running', attempts = 1,"
                " locked_until = CASE WHEN event_id = :crashed THEN now() - interval '1 second'"
                " ELSE now() + interval '1 hour' END"
            ),
            {"crashed": crashed},
        )

    assert await worker.drain() == 1

    assert recorder.calls == [crashed]
    first, second = await deliveries(db)
    assert (first["status"], first["attempts"]) == ("done", 2)
    assert "lease of attempt 1 expired" in first["last_error"]
    assert (second["status"], second["attempts"]) == ("running", 1), "a live lease is respected"


async def test_a_claim_expiring_on_its_last_attempt_is_dead(db: Database, make_worker: MakeWorker) -> None:
    recorder = Recorder("r", {"thing.created"})
    worker = await make_worker(recorder, max_attempts=3)
    await emit_events(db, "thing.created")
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE events.deliveries SET status = 'running', attempts = 3,"
                " locked_until = now() - interval '1 second'"
            )
        )

    assert await worker.drain() == 0

    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert recorder.calls == []


async def test_two_workers_on_one_database_never_process_a_delivery_twice(
    db: Database, database_url: str, make_worker: MakeWorker
) -> None:
    # Each worker has its own engine and its own consumer objects, as two processes would.
    other_db = Database(database_url)
    try:
        first = [Recorder("a", {"thing.created"}), Recorder("b", {"thing.created"})]
        second = [Recorder("a", {"thing.created"}), Recorder("b", {"thing.created"})]
        worker_1 = await make_worker(*first, batch_size=4)
        worker_2 = await make_worker(*second, on=other_db, batch_size=4)
        await emit_events(db, *["thing.created"] * 150)

        claimed = await asyncio.gather(worker_1.drain(), worker_2.drain())
    finally:
        await other_db.dispose()

    ids = await outbox_ids(db, "thing.created")
    calls = Counter((r.name, i) for r in first + second for i in r.calls)
    assert calls == Counter({(name, i): 1 for name in ("a", "b") for i in ids})
    assert await received(db) == calls
    assert sum(claimed) == 300
    assert all(n > 0 for n in claimed), f"both workers should have taken a share: {claimed}"
    assert {(r["status"], r["attempts"]) for r in await deliveries(db)} == {("done", 1)}


async def test_stopping_a_worker_gives_back_the_rest_of_its_batch(db: Database) -> None:
    calls: list[int] = []
    worker: EventWorker

    async def stop_after_first(conn: AsyncConnection, event: Event) -> None:
        calls.append(event.id)
        asyncio.get_running_loop().create_task(worker.stop())

    registry = ConsumerRegistry([Consumer("c", frozenset({"thing.created"}), stop_after_first)])
    await registry.sync(db)
    worker = EventWorker(db, registry, batch_size=10, backoff=NO_WAIT)
    await emit_events(db, *["thing.created"] * 4)

    worker.start()
    for _ in range(100):
        if calls and worker._task is None:
            break
        await asyncio.sleep(0.05)

    assert len(calls) == 1
    rows = await deliveries(db)
    assert [(r["status"], r["attempts"]) for r in rows] == [("done", 1)] + [("pending", 0)] * 3


async def test_a_notification_wakes_an_idle_worker_without_waiting_for_the_poll(
    db: Database, make_worker: MakeWorker
) -> None:
    recorder = Recorder("r", {"thing.created"})
    worker = await make_worker(recorder, poll_seconds=60.0)
    worker.start()
    try:
        await asyncio.sleep(0.5)  # the worker has looked once, found nothing and listens
        await emit_events(db, "thing.created")
        for _ in range(100):
            if recorder.calls:
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    assert recorder.calls == await outbox_ids(db, "thing.created")


# -- administration -----------------------------------------------------------------------


async def test_dead_deliveries_are_visible_to_admins_and_redrive_retries_them(
    db: Database,
    make_worker: MakeWorker,
    client: httpx.AsyncClient,
    admin: Person,
) -> None:
    broken = Recorder("broken", {"thing.created"}, failures=-1)
    fine = Recorder("fine", {"thing.created"})
    worker = await make_worker(broken, fine, max_attempts=2)
    await emit_events(db, "thing.created", "thing.created")
    await worker.drain()
    first, second = await outbox_ids(db, "thing.created")

    summary = (await client.get("/v1/system/events", headers=admin.auth)).json()
    assert summary == {
        "consumers": [
            {"consumer": "broken", "pending": 0, "running": 0, "dead": 2, "oldestPendingAt": None,
             "oldestPendingSeconds": None},
            {"consumer": "fine", "pending": 0, "running": 0, "dead": 0, "oldestPendingAt": None,
             "oldestPendingSeconds": None},
        ]
    }  # fmt: skip
    dead = (await client.get("/v1/system/events/dead", headers=admin.auth)).json()
    assert [(d["eventId"], d["event"], d["consumer"], d["attempts"]) for d in dead] == [
        (first, "thing.created", "broken", 2),
        (second, "thing.created", "broken", 2),
    ]
    assert dead[0]["lastError"].startswith("RuntimeError: cannot handle event")
    assert "payload" not in dead[0]
    page = await client.get("/v1/system/events/dead?consumer=broken&limit=1&offset=1", headers=admin.auth)
    assert [d["eventId"] for d in page.json()] == [second]
    metrics = (await client.get("/metrics")).text
    assert 'odk_mcp_event_deliveries{consumer="broken",status="dead"} 2.0' in metrics

    redrive = await client.post(
        "/v1/system/events/dead/redrive", json={"consumer": "broken"}, headers=admin.auth
    )
    assert redrive.json() == {"redriven": 2}

    summary = (await client.get("/v1/system/events", headers=admin.auth)).json()
    assert summary["consumers"][0]["pending"] == 2
    assert summary["consumers"][0]["oldestPendingSeconds"] >= 0
    metrics = (await client.get("/metrics")).text
    assert 'odk_mcp_event_deliveries{consumer="broken",status="dead"} 0.0' in metrics
    assert 'odk_mcp_event_deliveries{consumer="broken",status="pending"} 2.0' in metrics
    audits = (await client.get("/v1/audits?action=events.redrive", headers=admin.auth)).json()
    assert audits[0]["details"] == {"consumer": "broken", "deadOnly": True, "deliveries": 2}

    broken.failures = 0
    assert await worker.drain() == 2
    assert await received(db) == Counter(
        {(name, i): 1 for name in ("broken", "fine") for i in (first, second)}
    )
    assert (await client.get("/v1/system/events/dead", headers=admin.auth)).json() == []


async def test_redrive_without_dead_only_also_hurries_waiting_retries(
    db: Database, make_worker: MakeWorker, container: Container
) -> None:
    from odk_mcp.kernel.actor import SYSTEM

    recorder = Recorder("flaky", {"thing.created"}, failures=1)
    worker = await make_worker(recorder, backoff=Backoff(base_seconds=3600.0))
    await emit_events(db, "thing.created")
    await worker.drain()

    assert await container.deliveries.redrive(SYSTEM, dead_only=True) == 0
    assert await container.deliveries.redrive(SYSTEM, dead_only=False) == 1
    assert await worker.drain() == 1
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("done", 2)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/system/events"),
        ("GET", "/v1/system/events/dead"),
        ("POST", "/v1/system/events/dead/redrive"),
    ],
)
async def test_only_administrators_see_and_redrive_deliveries(
    client: httpx.AsyncClient, make_user: MakeUser, method: str, path: str
) -> None:
    user = await make_user()
    anonymous = await client.request(method, path)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 401.1)
    forbidden = await client.request(method, path, headers=user.auth)
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, 403.1)


# -- the command line ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_worker_command_runs_until_sigterm_and_redrive_revives_dead_deliveries(
    database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODK_MCP_") and k != "DATABASE_URL"}
    env.update(ODK_MCP_DATABASE_URL=database_url, ODK_MCP_DATA_DIR=str(tmp_path), ODK_MCP_LOG_LEVEL="INFO")
    worker = subprocess.Popen(
        [sys.executable, "-m", "odk_mcp", "worker"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO events.subscriptions VALUES ('gone', 'thing.created')")
        conn.execute("INSERT INTO events.outbox (event, payload) VALUES ('thing.created', '{}')")
        conn.execute("UPDATE events.deliveries SET status = 'dead', attempts = 8")

    redrive = subprocess.run(
        [sys.executable, "-m", "odk_mcp", "events", "redrive", "--consumer", "gone"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (redrive.returncode, redrive.stdout) == (0, "1 deliveries back to pending\n"), redrive.stderr
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status, attempts FROM events.deliveries").fetchone()
    assert row == ("pending", 0)

    deadline = time.monotonic() + 60
    while "event_worker_started" not in (worker.stderr.readline() if worker.stderr else ""):
        assert worker.poll() is None and time.monotonic() < deadline, "the worker did not start"
    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert "event_worker_stopped" in errors


# -- batch handlers -----------------------------------------------------------------------


class BatchRecorder(Recorder):
    """A Recorder with a batch handler writing all its events in one statement; the batch
    fails (after writing) when it holds an event whose payload says `bad`, which the plain
    handler then fails alone."""

    def __init__(self, name: str, events: Iterable[str]) -> None:
        super().__init__(name, events)
        self.batches: list[list[int]] = []

    def consumer(self) -> Consumer:
        return Consumer(self.name, self.events, self.handle, self.handle_batch)

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        if event.payload.get("bad"):
            self.calls.append(event.id)
            raise RuntimeError("a bad event")
        await super().handle(conn, event)

    async def handle_batch(self, conn: AsyncConnection, events: Any) -> None:
        self.batches.append([e.id for e in events])
        await conn.execute(
            text(
                "INSERT INTO pipeline_test.received (consumer, event_id)"
                " SELECT :c, unnest(CAST(:e AS bigint[]))"
            ),
            {"c": self.name, "e": [e.id for e in events]},
        )
        if any(e.payload.get("bad") for e in events):
            raise RuntimeError("a bad event in the batch")


async def test_a_batch_handler_gets_all_of_a_batchs_events_at_once(
    db: Database, make_worker: MakeWorker
) -> None:
    batched = BatchRecorder("batched", {"thing.created"})
    plain = Recorder("plain", {"thing.created"})
    worker = await make_worker(batched, plain, batch_size=50)
    await emit_events(db, *["thing.created"] * 6)
    assert await worker.drain() == 12
    ids = await outbox_ids(db, "thing.created")
    assert batched.batches == [ids], "one call, in event order"
    assert batched.calls == [], "the plain handler is not called"
    assert plain.calls == ids
    assert await received(db) == Counter(
        {**{("batched", i): 1 for i in ids}, **{("plain", i): 1 for i in ids}}
    )
    assert {(r["consumer"], r["status"], r["attempts"]) for r in await deliveries(db)} == {
        ("batched", "done", 1),
        ("plain", "done", 1),
    }


async def test_a_failing_batch_is_undone_and_retried_event_by_event(
    db: Database, make_worker: MakeWorker
) -> None:
    batched = BatchRecorder("batched", {"thing.created"})
    worker = await make_worker(batched, batch_size=50, backoff=Backoff(base_seconds=3600))
    await emit_events(db, "thing.created", "thing.created")
    async with db.transaction() as conn:
        await emit(conn, "thing.created", {"bad": True})
    await emit_events(db, "thing.created")
    assert await worker.drain() == 4
    good_1, good_2, bad, good_3 = await outbox_ids(db, "thing.created")
    assert batched.batches == [[good_1, good_2, bad, good_3]]
    # The batch's writes were undone; each event then ran alone, the bad one failing alone.
    assert batched.calls == [good_1, good_2, bad, good_3]
    assert await received(db) == Counter(
        {("batched", good_1): 1, ("batched", good_2): 1, ("batched", good_3): 1}
    )
    states = {r["event_id"]: (r["status"], r["attempts"]) for r in await deliveries(db)}
    assert states == {good_1: ("done", 1), good_2: ("done", 1), bad: ("pending", 1), good_3: ("done", 1)}
