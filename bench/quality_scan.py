"""The full quality scan over a million submissions: where its time goes, rule group by rule
group, and what it costs end to end as an analysis job over HTTP, beside same-run plain
Polars baselines on the same rows.

    python bench/quality_scan.py [--rows 1000000] [--rounds 3] [--data-dir DIR]

Rows are those of `bench/analytics.py` (the same synthetic survey, loaded the same way; a
`--data-dir` one of them prepared is reused by the other). Each round:
- loads every field through the analytics facade (the columnar cache, built before the
  rounds) and runs the rules on that frame in-process, timing each rule group;
- runs the scan as the API does: `POST …/analytics/quality` with `Prefer: respond-async`,
  polling the job until done (load + rules + storing every finding in PostgreSQL);
- baselines: a plain Polars read of the same rows' Parquet file (every column), and a plain
  Polars group-by count per enumerator on the loaded frame.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import polars as pl
from analytics import prepare, session  # the sibling bench script: same rows, same loading
from sqlalchemy import text

from odk_mcp.bootstrap import build_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.aggregation import ROOT
from odk_mcp.services.analytics.domain.fields import SUBMITTER, FieldIndex
from odk_mcp.services.analytics.domain.quality.findings import Area, QualityConfig
from odk_mcp.services.analytics.domain.quality.scan import scan
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.synthetic import AREA_BOX, FORM_ID, survey_fields
from odk_mcp.settings import Settings


def timed_steps(frame: pl.DataFrame) -> tuple[dict[str, float], int]:
    """Seconds per rule group of one in-process scan, and the number of findings."""
    marks: list[tuple[str, float]] = []
    result = scan(
        frame,
        FieldIndex.of(survey_fields()),
        QualityConfig(area=Area(box=AREA_BOX)),
        lambda name, done, total: marks.append((name, time.perf_counter())),
    )
    marks.append(("end", time.perf_counter()))
    return {a: t2 - t1 for (a, t1), (_, t2) in itertools.pairwise(marks)}, len(result.findings)


async def job_over_http(client: httpx.AsyncClient, auth: dict[str, str], pid: int) -> dict[str, float]:
    """A scan job through the API: seconds to its handle, and until it is done."""
    start = time.perf_counter()
    started = await client.post(
        f"/v1/projects/{pid}/forms/{FORM_ID}/analytics/quality", headers={**auth, "Prefer": "respond-async"}
    )
    assert started.status_code == 202, started.text
    handle_at = time.perf_counter()
    while True:
        status = (await client.get(started.headers["location"], headers=auth)).json()
        if status["status"] in ("done", "failed"):
            assert status["status"] == "done", status
            break
        await asyncio.sleep(0.2)
    return {"handle": handle_at - start, "done": time.perf_counter() - start}


async def run(url: str, data_dir: Path, rows: int, rounds: int) -> None:
    settings = Settings(database_url=url, data_dir=data_dir, analytics_wait_seconds=0)  # type: ignore[call-arg]
    shutil.rmtree(data_dir / "columns", ignore_errors=True)
    container = build_container(settings, url)
    pid, form_id = await prepare(container, data_dir, rows)
    # The synthetic interviews start in March 2026; a real form exists before its data (else
    # every start/end would be flagged `date_before_form`).
    async with container.db.transaction() as conn:
        await conn.execute(
            text("UPDATE forms.forms SET created_at = '2026-01-01T00:00:00Z' WHERE id = :id"), {"id": form_id}
        )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(container=container)),
        base_url="http://bench",
        timeout=600,
    )
    auth = await session(client)
    area = await client.put(f"/v1/projects/{pid}/analytics/area", json={"box": list(AREA_BOX)}, headers=auth)
    assert area.status_code == 200, area.text
    frames = FormFrames(container.aggregation.read_model, container.aggregation.columns)
    form = await frames.form(SYSTEM, pid, FORM_ID)
    start = time.perf_counter()
    await frames.load(form)
    print(f"first load (builds the columnar cache of {rows:,} rows): {time.perf_counter() - start:.1f} s")
    columns = container.aggregation.columns
    assert columns is not None
    directory = columns.directory / f"form-{form_id}-published"
    parquet = directory / json.loads((directory / "manifest.json").read_text())["tables"][ROOT]

    samples: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)

    findings = 0
    for _ in range(rounds):
        start = time.perf_counter()
        loaded = await frames.load(form)
        add("load every field (facade, columnar cache)", time.perf_counter() - start)
        start = time.perf_counter()
        steps, findings = await asyncio.to_thread(timed_steps, loaded.frame)
        add("rules (in-process scan)", time.perf_counter() - start)
        for name, seconds in steps.items():
            add(f"  rules: {name}", seconds)
        start = time.perf_counter()
        pl.read_parquet(parquet)
        add("  baseline: plain Polars read of every column (Parquet)", time.perf_counter() - start)
        start = time.perf_counter()
        loaded.frame.group_by(SUBMITTER).len()
        add("  baseline: plain Polars group-by count per enumerator", time.perf_counter() - start)
        job = await job_over_http(client, auth, pid)
        add("scan job over HTTP: 202 with the handle", job["handle"])
        add("scan job over HTTP: until done (load + rules + store)", job["done"])
    print(f"\n{'operation (median of ' + str(rounds) + ')':<62} {'seconds':>8}")
    for name, values in samples.items():
        print(f"{name:<62} {statistics.median(values):>8.2f}")
    print(f"findings per scan: {findings:,}")
    await columns.wait_idle()
    await client.aclose()
    await container.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, help="keep the database (and its rows) here between runs")
    args = parser.parse_args()
    configure_logging("ERROR", json_lines=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        server = EmbeddedPostgres(data_dir / "pgdata")
        url = server.start()
        try:
            migrations.upgrade(url)
            asyncio.run(run(url, data_dir, args.rows, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
