"""Analytics over a million submissions: crosstab, weighted estimate, daily counts, the
form summary endpoint and the full quality scan through the real facades (permission check,
form lookup, the columnar cache's delta check and column-projected read, Polars/SciPy), each
beside same-run baselines: the equivalent plain Polars query over the same rows in a Parquet
file (the issue's baseline), and the bare SQL aggregate over the read model's JSON. Also the
cache's first build, a read after 1,000 edited submissions (the delta merged from
PostgreSQL), and the precision and recall of every planted quality rule.

    python bench/analytics.py [--rows 1000000] [--rounds 3] [--data-dir DIR] [--no-scan]

`--data-dir` keeps the embedded PostgreSQL and its million rows between runs (the columnar
cache is deleted at each start, so its first build is measured every time).

Rows are the synthetic survey of `odk_mcp.services.analytics.synthetic` (28 columns, planted
problems), published as a real form and written straight into `aggregation.rows` with COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from sqlalchemy import text

from odk_mcp.bootstrap import Container, build_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.aggregation import ROOT, number_column, text_column
from odk_mcp.services.analytics.domain.fields import FieldIndex
from odk_mcp.services.analytics.domain.quality.findings import Area, QualityConfig
from odk_mcp.services.analytics.domain.quality.scan import scan
from odk_mcp.services.analytics.domain.survey import Design
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.synthetic import AREA_BOX, FORM_ID, survey, survey_fields, survey_xform
from odk_mcp.settings import Settings

EMAIL, PASSWORD = "bench@example.org", "correct horse battery staple"
CROSSTAB_SQL = """SELECT data->>'/region', data->>'/crop', count(*) FROM aggregation.rows
WHERE form_id = :form_id AND NOT draft AND deleted_at IS NULL GROUP BY 1, 2"""
MEAN_SQL = """SELECT sum((data->>'/weight')::float8 * (data->>'/income')::float8)
  / sum((data->>'/weight')::float8), count(DISTINCT data->>'/village')
FROM aggregation.rows WHERE form_id = :form_id AND NOT draft AND deleted_at IS NULL"""
DAILY_SQL = """SELECT date_trunc('day', created_at), count(*) FROM aggregation.rows
WHERE form_id = :form_id AND NOT draft AND deleted_at IS NULL GROUP BY 1"""


async def session(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def publish(container: Container) -> int:
    await container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, None)
    await container.users.accounts.promote(SYSTEM, EMAIL)
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        auth = await session(client)
        pid = int((await client.post("/v1/projects", json={"name": "Bench"}, headers=auth)).json()["id"])
        response = await client.post(
            f"/v1/projects/{pid}/forms",
            content=survey_xform(),
            params={"publish": "true"},
            headers={**auth, "Content-Type": "application/xml"},
        )
        assert response.status_code == 200, response.text
    return pid


async def load_rows(container: Container, pid: int, frame: pl.DataFrame) -> int:
    """Write the frame into aggregation.rows as the projector would (COPY, 100k per chunk)."""
    versions = await container.forms.lookup.versions(pid, FORM_ID, False)
    assert versions is not None
    paths = [f.path for f in survey_fields()]
    rows = frame.select(
        pl.col("submission_id"),
        pl.lit(pid).alias("project_id"),
        pl.lit(versions.form_id).alias("form_id"),
        pl.lit(FORM_ID).alias("xml_form_id"),
        pl.lit(False).alias("draft"),
        pl.col("instance_id"),
        pl.col("submission_id").alias("version_id"),
        pl.col("instance_id").alias("current_instance_id"),
        pl.lit(versions.def_ids[-1]).alias("form_def_id"),
        pl.col("form_version"),
        pl.col("submitter_id"),
        pl.col("device_id"),
        pl.col("created_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"),
        pl.lit(0).alias("edits"),
        pl.lit(0).alias("attachments_expected"),
        pl.lit(0).alias("attachments_present"),
        pl.lit(0).alias("flag_count"),
        pl.lit(0).alias("finding_count"),
        pl.struct(paths).struct.json_encode().alias("data"),
        pl.lit(0).alias("event_id"),
    )
    columns = ", ".join(rows.columns)
    async with container.db.transaction() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.cursor() as cursor:
            for start in range(0, rows.height, 100_000):
                buffer = io.BytesIO()
                rows.slice(start, 100_000).write_csv(buffer, include_header=False)
                async with cursor.copy(f"COPY aggregation.rows ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    await copy.write(buffer.getvalue())
    async with container.db.transaction() as conn:
        await conn.execute(text("ANALYZE aggregation.rows"))
    return versions.form_id


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


async def sql(container: Container, query: str, form_id: int) -> Any:
    async with container.db.read() as conn:
        return (await conn.execute(text(query), {"form_id": form_id})).all()


async def prepare(container: Container, data_dir: Path, rows: int) -> tuple[int, int]:
    """Publish and load the survey, or find it loaded by an earlier run in this data dir."""
    state = data_dir / "bench-analytics.json"
    if state.exists():
        saved = json.loads(state.read_text())
        if saved["rows"] == rows:
            print(f"reusing {rows:,} submissions loaded earlier in {data_dir}")
            return int(saved["pid"]), int(saved["form_id"])
        raise SystemExit(f"{data_dir} holds {saved['rows']:,} rows, not {rows:,}: use another --data-dir")
    pid = await publish(container)
    started = time.perf_counter()
    frame, _ = survey(rows, enumerators=200, seed=11)
    generated = time.perf_counter() - started
    form_id = await load_rows(container, pid, frame)
    writing = time.perf_counter() - started - generated
    print(f"{frame.height:,} submissions generated in {generated:.1f} s, written in {writing:.1f} s")
    state.write_text(json.dumps({"rows": rows, "pid": pid, "form_id": form_id}))
    return pid, form_id


def plain(path: Path, query: Callable[[pl.LazyFrame], pl.LazyFrame]) -> Callable[[], Awaitable[Any]]:
    """A baseline: the same question asked of the same rows in a Parquet file, in plain Polars."""

    async def work() -> Any:
        return query(pl.scan_parquet(path)).collect()

    return work


def summary_baseline(frame: pl.LazyFrame) -> pl.LazyFrame:
    """What the summary computes, as one plain Polars query: answered counts of every field,
    numeric mean/sd/min/max/quantiles, and value counts of the single-choice ones."""
    fields = survey_fields()
    numeric = [f.path for f in fields if f.type in ("int", "decimal")]
    exprs: list[pl.Expr] = [pl.col(text_column(f.path)).count().alias(f.path) for f in fields]
    for p in numeric:
        value = pl.col(number_column(p))
        exprs += [
            value.mean().alias(f"{p}mean"),
            value.std().alias(f"{p}sd"),
            value.min().alias(f"{p}min"),
            value.max().alias(f"{p}max"),
        ]
        exprs += [value.quantile(q).alias(f"{p}{q}") for q in (0.05, 0.25, 0.5, 0.75, 0.95)]
    return frame.select(exprs)


async def engines_before(container: Container, pid: int, design: Design) -> None:
    """Once each, the engines the cache replaced: the SQL summary over the JSON, and the
    statistics facade loading by COPY out of the JSON (what ran before the cache)."""
    from odk_mcp.services.analytics.statistics import Statistics

    read_model = container.aggregation.read_model
    form = await read_model.form(SYSTEM, pid, FORM_ID, False)
    old = Statistics(FormFrames(read_model))
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "before: summary in SQL (summaries_sql)": lambda: container.aggregation.summaries.sql.summarize_form(
            form
        ),
        "before: crosstab (GROUP BY in PostgreSQL)": lambda: old.crosstab(
            SYSTEM, pid, FORM_ID, "/region", "/crop"
        ),
        "before: weighted mean (COPY of 4 fields)": lambda: old.estimate(
            SYSTEM, pid, FORM_ID, "/income", design
        ),
        "before: submissions per day (GROUP BY)": lambda: old.timeseries(SYSTEM, pid, FORM_ID, "day"),
    }
    print()
    for name, work in cases.items():
        print(f"{name:<62} {await timed(work):>8.2f}", flush=True)


async def run(url: str, data_dir: Path, rows: int, rounds: int, quality: bool, before: bool = False) -> None:
    settings = Settings(database_url=url, data_dir=data_dir)  # type: ignore[call-arg]
    shutil.rmtree(data_dir / "columns", ignore_errors=True)
    container = build_container(settings, url)
    pid, form_id = await prepare(container, data_dir, rows)
    stats = container.analytics.statistics
    design = Design(weights="/weight", strata="/region", clusters="/village")
    columns = container.aggregation.columns
    assert columns is not None
    transport = httpx.ASGITransport(app=create_app(container=container))
    client = httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600)
    auth = await session(client)

    async def summary() -> None:
        response = await client.get(f"/v1/projects/{pid}/forms/{FORM_ID}/summary", headers=auth)
        assert response.status_code == 200, response.text

    print(f"\nfirst request (builds the columnar cache of {rows:,} rows): ", end="", flush=True)
    print(f"{await timed(lambda: stats.crosstab(SYSTEM, pid, FORM_ID, '/region', '/crop')):.1f} s")
    directory = columns.directory / f"form-{form_id}-published"
    manifest = json.loads((directory / "manifest.json").read_text())
    parquet = directory / manifest["tables"][ROOT]
    print(f"cache files: {sum(f.stat().st_size for f in directory.glob('*.parquet')) / 1e6:.0f} MB")
    region, crop = text_column("/region"), text_column("/crop")
    income, weight = number_column("/income"), number_column("/weight")
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "crosstab /region x /crop (facade)": lambda: stats.crosstab(SYSTEM, pid, FORM_ID, "/region", "/crop"),
        "  baseline: plain Polars group-by of the 2 columns (Parquet)": plain(
            parquet, lambda f: f.group_by(region, crop).len()
        ),
        "  baseline: SQL GROUP BY of the 2 fields (JSONB)": lambda: sql(container, CROSSTAB_SQL, form_id),
        "weighted mean /income, strata+clusters (facade)": lambda: stats.estimate(
            SYSTEM, pid, FORM_ID, "/income", design
        ),
        "  baseline: plain Polars weighted mean (Parquet)": plain(
            parquet,
            lambda f: f.select(
                (pl.col(weight) * pl.col(income)).sum() / pl.col(weight).sum(),
                pl.col(text_column("/village")).n_unique(),
            ),
        ),
        "  baseline: SQL weighted mean of the same fields (JSONB)": lambda: sql(container, MEAN_SQL, form_id),
        "weighted proportions /crop, strata+clusters (facade)": lambda: stats.estimate(
            SYSTEM, pid, FORM_ID, "/crop", design
        ),
        "submissions per day (facade)": lambda: stats.timeseries(SYSTEM, pid, FORM_ID, "day"),
        "  baseline: plain Polars daily counts (Parquet)": plain(
            parquet, lambda f: f.group_by(pl.from_epoch("created_at", time_unit="us").dt.date()).len()
        ),
        "  baseline: SQL date_trunc GROUP BY": lambda: sql(container, DAILY_SQL, form_id),
        "GET .../summary (HTTP, every question)": summary,
        "  baseline: plain Polars counts/stats/quantiles (Parquet)": plain(parquet, summary_baseline),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, work in cases.items():
            samples[name].append(await timed(work))
    print(f"\n{'operation (median of ' + str(rounds) + ')':<62} {'seconds':>8}")
    for name, values in samples.items():
        print(f"{name:<62} {statistics.median(values):>8.2f}")

    # Edits after the cache was written: the delta is read from PostgreSQL and merged.
    async with container.db.transaction() as conn:
        await conn.execute(
            text(
                'UPDATE aggregation.rows SET data = data || \'{"/crop": "maize"}\'::jsonb'
                " WHERE form_id = :form_id AND submission_id % 1000 = 7"
            ),
            {"form_id": form_id},
        )
    delta = [
        await timed(lambda: stats.crosstab(SYSTEM, pid, FORM_ID, "/region", "/crop")) for _ in range(rounds)
    ]
    print(f"{'crosstab after ~1,000 edited submissions (delta merged)':<62} {statistics.median(delta):>8.2f}")
    await columns.wait_idle()
    await client.aclose()
    if before:
        await engines_before(container, pid, design)
    if quality:
        await quality_scan(container, pid)
    await container.db.dispose()


async def quality_scan(container: Container, pid: int) -> None:
    start = time.perf_counter()
    frames = FormFrames(container.aggregation.read_model, container.aggregation.columns)
    loaded = await frames.load(await frames.form(SYSTEM, pid, FORM_ID))
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    loaded.frame.group_by("submitter_id").len()
    group_seconds = time.perf_counter() - start
    config = QualityConfig(area=Area(box=AREA_BOX))
    start = time.perf_counter()
    result = scan(loaded.frame, FieldIndex.of(survey_fields()), config)
    scan_seconds = time.perf_counter() - start
    print(
        f"\nquality scan: load every field {load_seconds:.1f} s + rules {scan_seconds:.1f} s "
        f"= {load_seconds + scan_seconds:.1f} s"
    )
    print(f"  baseline: plain Polars group-by count on the loaded frame {group_seconds:.3f} s")
    print(f"  findings by rule: {result.by_rule}")


def precision_recall() -> None:
    frame, truth = survey(6000, seed=3)
    result = scan(frame, FieldIndex.of(survey_fields()), QualityConfig(area=Area(box=AREA_BOX)))
    print(f"\n{'rule':<24} {'planted':>8} {'flagged':>8} {'precision':>10} {'recall':>8}")
    planted = {
        "speeding": truth.speeding,
        "straightlining": truth.straightlining,
        "duplicate": truth.duplicate,
        "near_duplicate": truth.near_duplicate,
        "outlier": truth.outlier,
        "gps_outside_area": truth.gps_outside_area,
        "gps_far_from_cluster": truth.gps_outside_area,
    }
    for rule, expected in planted.items():
        found = {f.submission_id for f in result.findings if f.rule == rule}
        hits = len(found & expected)
        print(
            f"{rule:<24} {len(expected):>8} {len(found):>8} "
            f"{hits / max(len(found), 1):>10.3f} {hits / len(expected):>8.3f}"
        )
    flagged = {f.enumerator for f in result.findings if f.rule == "enumerator_answer_pattern"}
    precision = len(flagged & {truth.fabricator}) / max(len(flagged), 1)
    recall = float(truth.fabricator in flagged)
    print(f"{'enumerator_answer_pattern':<24} {1:>8} {len(flagged):>8} {precision:>10.3f} {recall:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-scan", action="store_true", help="skip the full quality scan")
    parser.add_argument("--data-dir", type=Path, help="keep the database (and its rows) here between runs")
    parser.add_argument(
        "--before", action="store_true", help="also time the engines the cache replaced, once"
    )
    args = parser.parse_args()
    configure_logging("ERROR", json_lines=True)
    if not args.no_scan:
        precision_recall()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        server = EmbeddedPostgres(data_dir / "pgdata")
        url = server.start()
        try:
            migrations.upgrade(url)
            asyncio.run(run(url, data_dir, args.rows, args.rounds, not args.no_scan, args.before))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
