"""Webhooks: end-to-end delivery rate, and what a receiver costs ingestion.

Runs the real app in-process (httpx ASGI transport) on a fresh embedded PostgreSQL with the
real background event worker and webhook sender running, as `odk-mcp serve` does, and real
HTTP receivers on 127.0.0.1 (threaded `http.server`, each in its own process).

1. Sender rate: N deliveries queued (by N submissions) while the sender is stopped, then the
   time the sender takes to POST them all (signed) to a receiver and record the outcomes.
2. Ingestion latency (REST `POST …/submissions`, one client, sequential) in interleaved
   rounds under three conditions: no active webhook (baseline), a webhook to a fast
   receiver, and a webhook to a receiver that hangs every request until the sender's
   timeout (the breaker threshold is set out of reach, so the sender keeps waiting on it:
   the worst case). Prints p50 / p95 / max per condition and p50 against the baseline.

Usage: python bench/webhooks.py [--rounds 6] [--per-round 20] [--deliveries 500]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from odk_mcp.bootstrap import Container, build_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.settings import Settings

# Not fork: the server process has an event loop, threads and open connections.
SPAWN = multiprocessing.get_context("spawn")
EMAIL, PASSWORD = "bench@example.org", "bench password 123"
TIMEOUT = 5.0
FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>Bench</h:title><model><instance>
    <data id="bench" version="1"><name/><age/><meta><instanceID/></meta></data>
  </instance>
  <bind nodeset="/data/name" type="string"/><bind nodeset="/data/age" type="int"/>
  </model></h:head>
  <h:body><input ref="/data/name"><label>Name</label></input>
  <input ref="/data/age"><label>Age</label></input></h:body>
</h:html>"""
XML = {"Content-Type": "application/xml"}
_count = 0


def _serve(port: int, hang: float, started: Any, accepted: Any, ready: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with started.get_lock():
                started.value += 1
            if hang:
                time.sleep(hang)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with accepted.get_lock():
                accepted.value += 1

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False

    server = Server(("127.0.0.1", port), Handler)
    ready.set()
    server.serve_forever()


class Receiver:
    """A receiver in its own process, so that its work is not counted against the server's."""

    def __init__(self, hang: float = 0.0) -> None:
        self.hang = hang
        self._started = SPAWN.Value("i", 0)
        self._accepted = SPAWN.Value("i", 0)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"

    @property
    def started(self) -> int:
        return int(self._started.value)

    @property
    def accepted(self) -> int:
        return int(self._accepted.value)

    def __enter__(self) -> Receiver:
        self._ready = SPAWN.Event()  # kept: the child opens it after starting (spawn is slow)
        args = (self.port, self.hang, self._started, self._accepted, self._ready)
        self._process = SPAWN.Process(target=_serve, args=args, daemon=True)
        self._process.start()
        if not self._ready.wait(120):
            raise RuntimeError("the receiver process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.join()


def instance() -> bytes:
    global _count
    _count += 1
    return (
        f'<data id="bench" version="1"><name>Ada {_count}</name><age>{_count % 90}</age>'
        f"<meta><instanceID>uuid:bench-{_count}</instanceID></meta></data>"
    ).encode()


async def submit(client: httpx.AsyncClient, auth: dict[str, str], pid: int) -> float:
    started = time.perf_counter()
    response = await client.post(
        f"/v1/projects/{pid}/forms/bench/submissions", content=instance(), headers=auth
    )
    took = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    await asyncio.sleep(0.005)  # one client with think time: the background tasks get turns
    return took


async def queued(container: Container) -> int:
    async with container.db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM webhooks.deliveries"))).scalar_one())


async def run(url: str, data_dir: Path, rounds: int, per_round: int, deliveries: int) -> None:
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        log_level="ERROR",
        webhook_allow_private=True,
        webhook_timeout_seconds=TIMEOUT,
        webhook_breaker_threshold=1000,
        webhook_max_attempts=100,
        webhook_batch_size=50,
    )  # type: ignore[call-arg]
    container = build_container(settings, url)
    await container.consumers.sync(container.db)
    await container.start()
    app = create_app(container=container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        login = await client.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
        auth = {"Authorization": "Bearer " + login.json()["token"]}
        pid = (await client.post("/v1/projects", json={"name": "Bench"}, headers=auth)).json()["id"]
        published = await client.post(
            f"/v1/projects/{pid}/forms", content=FORM, params={"publish": "true"}, headers={**auth, **XML}
        )
        assert published.status_code == 200, published.text
        auth_xml = {**auth, **XML}

        async def webhook(target: str, active: bool) -> int:
            body = {"url": target, "events": ["submission.received"], "active": active}
            response = await client.post(f"/v1/projects/{pid}/webhooks", json=body, headers=auth)
            assert response.status_code == 200, response.text
            return int(response.json()["id"])

        async def activate(hook: int, active: bool) -> None:
            await client.patch(f"/v1/projects/{pid}/webhooks/{hook}", json={"active": active}, headers=auth)

        with Receiver() as fast, Receiver(hang=TIMEOUT * 4) as hanging:
            # 1. Delivery rate: queue N deliveries with the sender stopped, then time the sender.
            rate_hook = await webhook(fast.url, True)
            await container.webhooks.sender.stop()
            for _ in range(deliveries):
                await submit(client, auth_xml, pid)
            while await queued(container) < deliveries:  # noqa: ASYNC110 - rows the worker writes
                await asyncio.sleep(0.05)
            started = time.perf_counter()
            container.webhooks.sender.start()
            while fast.accepted < deliveries:  # noqa: ASYNC110 - a counter of the receiver's thread
                await asyncio.sleep(0.005)
            took = time.perf_counter() - started
            await activate(rate_hook, False)
            print(
                f"sender: {deliveries} queued deliveries sent (signed POST, 200, recorded) in {took:.2f} s:"
                f" {deliveries / took:.0f} deliveries/s, one sender, one endpoint"
            )

            # 2. Ingestion latency by condition, interleaved.
            fast_hook, hanging_hook = await webhook(fast.url, False), await webhook(hanging.url, False)
            samples: dict[str, list[float]] = {"no webhook": [], "fast receiver": [], "hanging receiver": []}
            for _ in range(rounds):
                for condition, hook in (
                    ("no webhook", None),
                    ("fast receiver", fast_hook),
                    ("hanging receiver", hanging_hook),
                ):
                    if hook is not None:
                        await activate(hook, True)
                    for _ in range(per_round):
                        samples[condition].append(await submit(client, auth_xml, pid))
                    if hook is not None:
                        await activate(hook, False)
            base = statistics.median(samples["no webhook"])
            print(f"\ningestion, {rounds} rounds x {per_round} submissions per condition (ms):")
            print(f"{'condition':<18} {'p50':>7} {'p95':>7} {'max':>7} {'p50 x base':>11}")
            for condition, values in samples.items():
                values.sort()
                p95 = values[int(0.95 * (len(values) - 1))]
                print(
                    f"{condition:<18} {statistics.median(values):>7.1f} {p95:>7.1f} {values[-1]:>7.1f} "
                    f"{statistics.median(values) / base:>11.2f}"
                )
            print(
                f"\nhanging receiver: {hanging.started} requests reached it during the run, each held"
                f" until the {TIMEOUT:g} s timeout"
            )
    await container.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--deliveries", type=int, default=500)
    args = parser.parse_args()
    configure_logging("ERROR", json_lines=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata")
        url = server.start()
        try:
            migrations.upgrade(url)

            async def seed() -> None:
                settings = Settings(database_url=url, data_dir=Path(tmp))  # type: ignore[call-arg]
                container = build_container(settings, url)
                await container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, None)
                await container.users.accounts.promote(SYSTEM, EMAIL)
                await container.db.dispose()

            asyncio.run(seed())
            asyncio.run(run(url, Path(tmp), args.rounds, args.per_round, args.deliveries))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
