"""Interleaved A/B of OpenRosa ingestion between two checkouts, on this machine, in one run.

For a change whose effect is smaller than the machine's drift between runs (the 2-core VMs here
wander by ±25 %), comparing two full `ingestion.py` runs made minutes apart says little. This
script alternates the two sides pair by pair: each turn starts a fresh server from one
checkout's `src` (a new data directory, the in-process event worker on, as `odk-mcp serve`
runs), warms it, then measures the same submit phases as `ingestion.py` (its realistic
30-question form with a repeat, its request generator and its CPU accounting) at 1 and 32
clients, and stops it. The summary gives each side's median over the pairs.

Usage: python bench/ab_ingestion.py BEFORE_CHECKOUT AFTER_CHECKOUT [--pairs 3] [--seconds 5]
       (e.g. a `git worktree` of the base commit, and this checkout)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingestion as bench

CLIENTS = (1, 32)


async def _phases(
    port: int, token: str, project: int, seconds: float, cpu: bench.Cpu
) -> dict[int, dict[str, float]]:
    requests = bench.Requests("127.0.0.1", port, token, project)
    await bench.http_phase("127.0.0.1", port, [requests.submit(i) for i in range(8)], 201, 1.0, cpu)
    out: dict[int, dict[str, float]] = {}
    for clients in CLIENTS:
        result = await bench.http_phase(
            "127.0.0.1", port, [requests.submit(i) for i in range(clients)], 201, seconds, cpu
        )
        if result.errors:
            sys.exit(f"errors at {clients} clients: {dict(result.errors)}")
        latencies = sorted(result.latencies)
        count = max(result.count, 1)
        server_cpu, pg_cpu, _, _ = result.cpu
        out[clients] = {
            "rate": result.rate,
            "p50": bench.percentile(latencies, 0.5),
            "p99": bench.percentile(latencies, 0.99),
            "server_ms": 1000 * server_cpu / count,
            "pg_ms": 1000 * pg_cpu / count,
        }
        await asyncio.sleep(1.5)
    return out


def one_side(checkout: Path, seconds: float) -> dict[int, dict[str, float]]:
    os.environ["PYTHONPATH"] = str(checkout.resolve() / "src")
    work = Path(tempfile.mkdtemp(prefix="ab-ingestion-"))
    port = bench.free_port()
    server = bench.start_server(work / "data", port, work / "server.log", worker=True)
    try:
        token, project = bench.set_up(f"http://127.0.0.1:{port}", work / "data")
        cpu = bench.Cpu(server.pid, work / "data" / "pgdata")
        return asyncio.run(_phases(port, token, project, seconds, cpu))
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    runs: dict[str, list[dict[int, dict[str, float]]]] = defaultdict(list)
    for pair in range(args.pairs):
        # Alternate which side goes first, so drift within a pair does not favour one side.
        order = [("before", args.before), ("after", args.after)]
        for side, checkout in order if pair % 2 == 0 else order[::-1]:
            figures = one_side(checkout, args.seconds)
            runs[side].append(figures)
            for clients, f in figures.items():
                print(
                    f"pair {pair + 1} {side:6s} c={clients:2d} {f['rate']:6.0f}/s p50 {f['p50']:7.2f}"
                    f" p99 {f['p99']:7.2f} ms  server CPU {f['server_ms']:.2f} ms, PostgreSQL"
                    f" {f['pg_ms']:.2f} ms per submission",
                    flush=True,
                )
    print(f"\nmedians over {args.pairs} interleaved pairs ({args.seconds:g} s phases)")
    for clients in CLIENTS:
        for side in ("before", "after"):
            values = {k: statistics.median(r[clients][k] for r in runs[side]) for k in runs[side][0][clients]}
            print(
                f"c={clients:2d} {side:6s} {values['rate']:6.0f}/s p50 {values['p50']:7.2f}"
                f" p99 {values['p99']:7.2f} ms  server CPU {values['server_ms']:.2f} ms/submission"
            )


if __name__ == "__main__":
    main()
