"""Idle memory of the whole server: `odk-mcp serve` plus its embedded PostgreSQL.

Target (../shared/PERFORMANCE.md): < 250 MB at idle, database included. Starts the real server on
a fresh data directory, waits until it is ready, warms it with a few requests (so lazily loaded
code is counted), lets it settle, then samples every process of the server: the Python process,
its children (conversion workers, if any), and every PostgreSQL process of its data directory.

Memory is reported three ways, because PostgreSQL's processes share most of their pages:
- USS: pages only that process has (the sum never counts a page twice, but misses shared ones);
- PSS: each shared page divided among its sharers (the sum is the fair total; the headline);
- RSS: resident pages, shared ones counted in every process (an over-count for PostgreSQL).
The same-run baseline is a bare `python -c 'import time; time.sleep(60)'` interpreter and a bare
PostgreSQL started by the same embedded-server library, so the table shows what is ours.

    python bench/idle_memory.py [--settle 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from odk_mcp.infra.embedded_postgres import EmbeddedPostgres

MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def memory(processes: list[psutil.Process]) -> dict[str, float]:
    totals = {"uss": 0.0, "pss": 0.0, "rss": 0.0}
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        totals["uss"] += info.uss / MB
        totals["pss"] += info.pss / MB
        totals["rss"] += info.rss / MB
    return totals


def postgres_of(pgdata: Path) -> list[psutil.Process]:
    """The postmaster of `pgdata` and all its backends and helpers."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(pgdata) in " ".join(process.info["cmdline"] or []):
            found.append(process)
            found.extend(process.children(recursive=True))
    return list({p.pid: p for p in found}.values())


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ODK_MCP_DATA_DIR": str(data_dir),
        "ODK_MCP_PORT": str(port),
        "ODK_MCP_LOG_LEVEL": "WARNING",
    }
    odk = shutil.which("odk-mcp") or str(Path(sys.executable).parent / "odk-mcp")
    return subprocess.Popen(  # noqa: S603 - our own console script
        [odk, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"odk-mcp serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("odk-mcp serve did not become ready in 120 s")


def measure_server(settle: float) -> tuple[dict[str, float], dict[str, float]]:
    home = Path(tempfile.mkdtemp(prefix="odk-bench-idle-"))
    port = free_port()
    process = serve(home / "data", port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, process)
        for path in ("/healthz", "/readyz", "/metrics", "/v1/projects", "/openapi.json"):
            httpx.get(f"{base}{path}", timeout=30)
        time.sleep(settle)
        python = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        python = [p for p in python if p.name() != "postgres"]
        pgdata = (home / "data" / "pgdata").resolve()
        return memory(python), memory(postgres_of(pgdata))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(home, ignore_errors=True)


def measure_baselines(settle: float) -> tuple[dict[str, float], dict[str, float]]:
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    home = Path(tempfile.mkdtemp(prefix="odk-bench-pg-"))
    server = EmbeddedPostgres(home / "pgdata")
    try:
        server.start()
        time.sleep(settle)
        return memory([psutil.Process(bare.pid)]), memory(postgres_of((home / "pgdata").resolve()))
    finally:
        bare.kill()
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before sampling")
    args = parser.parse_args()
    py_base, pg_base = measure_baselines(args.settle)
    py, pg = measure_server(args.settle)
    print(f"{'MB':<34}{'PSS':>9}{'USS':>9}{'RSS':>9}")
    rows = [
        ("bare python interpreter (baseline)", py_base),
        ("bare embedded PostgreSQL (baseline)", pg_base),
        ("odk-mcp serve: Python process(es)", py),
        ("odk-mcp serve: its PostgreSQL", pg),
        ("odk-mcp serve: total", {k: py[k] + pg[k] for k in py}),
    ]
    for label, values in rows:
        print(f"{label:<34}{values['pss']:>9.1f}{values['uss']:>9.1f}{values['rss']:>9.1f}")
    total = py["pss"] + pg["pss"]
    print(
        f"\nidle total (PSS) {total:.1f} MB against the 250 MB target: {'met' if total < 250 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
