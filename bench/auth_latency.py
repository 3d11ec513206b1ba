"""Per-request cost of each way to authenticate: Bearer session, HTTP Basic with the
verification cache, and HTTP Basic without it (a full argon2 verification per request).

Runs the real app in-process (httpx ASGI transport) on a fresh embedded PostgreSQL and
prints median and p90 latency of `GET /v1/projects` per method, interleaving the methods
in rounds so that machine noise hits them alike. Usage: python bench/auth_latency.py [rounds]
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from odk_mcp.bootstrap import build_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.settings import Settings

EMAIL, PASSWORD = "bench@example.org", "bench password 123"
PER_ROUND = 20


async def measure(client: httpx.AsyncClient, headers: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(PER_ROUND):
        started = time.perf_counter()
        response = await client.get("/v1/projects", headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return samples


async def run(url: str, data_dir: Path, rounds: int) -> None:
    basic = "Basic " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
    https = {"X-Forwarded-Proto": "https"}
    results: dict[str, list[float]] = {"bearer": [], "basic (cached)": [], "basic (no cache)": []}
    clients = {}
    for name, cache in (("cached", 60.0), ("uncached", 0.0)):
        settings = Settings(
            database_url=url,
            data_dir=data_dir,
            basic_auth_cache_seconds=cache,
            log_level="ERROR",
            login_limit_per_account="100000/minute",
            login_limit_per_ip="100000/minute",
        )  # type: ignore[call-arg]
        container = build_container(settings, url)
        clients[name] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(container=container)), base_url="http://bench"
        )
    login = await clients["cached"].post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
    bearer = {"Authorization": "Bearer " + login.json()["token"]}
    for _ in range(rounds):
        results["bearer"] += await measure(clients["cached"], bearer)
        results["basic (cached)"] += await measure(clients["cached"], {"Authorization": basic, **https})
        results["basic (no cache)"] += await measure(clients["uncached"], {"Authorization": basic, **https})
    baseline = statistics.median(results["bearer"])
    print(f"{'method':<18} {'median ms':>10} {'p90 ms':>8} {'x bearer':>9}  (n={rounds * PER_ROUND} each)")
    for name, samples in results.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:<18} {median:>10.2f} {p90:>8.2f} {median / baseline:>9.2f}")
    for client in clients.values():
        await client.aclose()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    configure_logging("ERROR", json_lines=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata")
        url = server.start()
        try:
            migrations.upgrade(url)
            settings = Settings(database_url=url, data_dir=Path(tmp))  # type: ignore[call-arg]

            async def seed() -> None:
                container = build_container(settings, url)
                await container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, None)
                await container.users.accounts.promote(SYSTEM, EMAIL)
                await container.db.dispose()

            asyncio.run(seed())
            asyncio.run(run(url, Path(tmp), rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
