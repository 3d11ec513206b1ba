"""The issue's scale run: a million submissions of the household form, read back every way.

Loads N submissions of the ingestion benchmark's 30-question household form (a 5-member
repeat, varied answers, ≈ 2.2 KB of XML each) through the submissions service's bulk import
(`container.submissions.importer.import_many`: each XML read by normal ingestion's code, then
COPY/unnest batches with the read model written in the same transaction), printing the
import rate as it goes. The data directory is kept (`--data-dir`): a later run with the same
directory loads only what is missing (instanceIDs are deterministic, the import idempotent).

Then, in interleaved rounds (medians printed), each beside a same-run baseline:

- through the real app in-process (httpx ASGI transport, Bearer session): the OData root
  table's first page (`$top=250`), the repeat table's first page, a deep page (`$skiptoken`
  at the middle row, same order as the first page), `$count` alone, and `GET …/summary`;
  baselines: the bare indexed `SELECT … ORDER BY created_at DESC, submission_id DESC LIMIT
  250` of the same page, the repeat page's bare join, the deep page's bare keyset `SELECT`,
  bare `count(*)`, and `GET /healthz` (HTTP floor);
- the CSV zip export (`Exports.prepare` + `stream`, the code behind `…/submissions.csv.zip`)
  in a fresh child process writing the zip to a file, reporting time, size and peak RSS
  (`ru_maxrss`); baseline: `COPY (SELECT … ORDER BY …) TO STDOUT (FORMAT csv)` of the same root
  and repeat rows drained by psycopg.

    python bench/scale.py --submissions 1000000 --data-dir /var/tmp/odk-scale [--rounds 5]
        [--export-rounds 2] [--batch 2000] [--workers 2] [--load-only | --no-load] [--no-summary]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingestion import FORM_ID, INSTANCE_MARK, LISTS, submission_xml, xform

from odk_mcp.bootstrap import open_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.aggregation.odata.options import Cursor
from odk_mcp.settings import Settings

EMAIL, PASSWORD = "bench@example.org", "bench password 123"
PAGE = 250
ROWS = "SELECT * FROM aggregation.rows WHERE form_id = %s AND NOT draft AND deleted_at IS NULL"
COUNT = "SELECT count(*) FROM aggregation.rows WHERE form_id = %s AND NOT draft AND deleted_at IS NULL"


def documents(template: str, start: int, stop: int) -> Iterator[Any]:
    """Submissions `start`..`stop-1`: instanceIDs from the index, answers varied by a seeded RNG."""
    from odk_mcp.services.submissions import ImportDocument  # (lazy: --pages-only runs older code)

    for i in range(start, stop):
        rng = random.Random(i)  # noqa: S311 - test data
        text = template.replace(INSTANCE_MARK, f"uuid:{uuid.UUID(int=i + 1, version=4)}")
        text = text.replace("<hh_size>5</hh_size>", f"<hh_size>{rng.randint(1, 12)}</hh_size>")
        text = text.replace("district_042", rng.choice(LISTS["district"]))
        text = text.replace("<livestock>6</livestock>", f"<livestock>{rng.randint(0, 40)}</livestock>")
        text = text.replace(
            "<income_month>85000.50</income_month>", f"<income_month>{rng.uniform(0, 2e5):.2f}</income_month>"
        )
        yield ImportDocument(text.encode())


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(database_url=url, data_dir=data_dir, log_level="ERROR", worker_in_process=False)  # type: ignore[call-arg]


async def set_up(container: Any, http: httpx.AsyncClient) -> tuple[dict[str, str], int]:
    """The bench user (created once), a session, and the project holding the form."""
    try:
        await container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, "Bench")
        await container.users.accounts.promote(SYSTEM, EMAIL)
    except Exception as exc:  # noqa: BLE001 - a reused data directory already has the user
        print(f"(bench user exists: {type(exc).__name__})")
    login = await http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
    auth = {"Authorization": "Bearer " + login.json()["token"]}
    projects = (await http.get("/v1/projects", headers=auth)).json()
    existing = [p["id"] for p in projects if p["name"] == "Scale"]
    if existing:
        return auth, int(existing[0])
    project = (await http.post("/v1/projects", json={"name": "Scale"}, headers=auth)).json()["id"]
    created = await http.post(
        f"/v1/projects/{project}/forms",
        content=xform(),
        params={"publish": "true"},
        headers={**auth, "Content-Type": "application/xml"},
    )
    assert created.status_code == 200, created.text
    return auth, int(project)


async def load(container: Any, url: str, project: int, target: int, batch: int, workers: int) -> None:
    with psycopg.connect(url) as pg:
        have = pg.execute(
            "SELECT count(*) FROM submissions.submissions WHERE project_id = %s", (project,)
        ).fetchone()[0]  # type: ignore[index]
    if have >= target:
        print(f"{have} submissions already loaded")
        return
    print(f"importing submissions {have}..{target - 1} in batches of {batch}")
    template = submission_xml().decode()
    started = time.perf_counter()
    last = [started, 0]

    def progress(total: Any) -> None:
        now = time.perf_counter()
        if total.imported - last[1] >= 50_000 or have + total.imported >= target:
            rate = (total.imported - last[1]) / (now - last[0])
            print(
                f"  {have + total.imported:>9} stored; last {total.imported - last[1]} at {rate:6.0f}/s,"
                f" overall {total.imported / (now - started):6.0f}/s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            last[:] = [now, total.imported]

    result = await container.submissions.importer.import_many(
        SYSTEM,
        project,
        FORM_ID,
        documents(template, have, target),
        batch_size=batch,
        workers=workers,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    print(
        f"imported {result.imported} (skipped {result.skipped}, conflicts {len(result.conflicts)})"
        f" in {seconds:.0f} s: {result.imported / seconds:.0f} submissions/s"
    )
    with psycopg.connect(url, autocommit=True) as pg:
        started = time.perf_counter()
        for table in (
            "submissions.submissions",
            "submissions.versions",
            "aggregation.rows",
            "aggregation.repeat_rows",
        ):
            pg.execute(f"VACUUM ANALYZE {table}")
        print(f"VACUUM ANALYZE after the load: {time.perf_counter() - started:.0f} s")


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def pages(
    container: Any,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    url: str,
    project: int,
    rounds: int,
    summary: bool,
) -> None:
    pg = await psycopg.AsyncConnection.connect(url, autocommit=True)
    form_id = (
        await (await pg.execute("SELECT id FROM forms.forms WHERE project_id = %s", (project,))).fetchone()
    )[0]  # type: ignore[index]
    count = (
        await (
            await pg.execute("SELECT count(*) FROM aggregation.rows WHERE form_id = %s", (form_id,))
        ).fetchone()
    )[0]  # type: ignore[index]
    middle = await (
        await pg.execute(
            "SELECT created_at, submission_id FROM aggregation.rows WHERE form_id = %s AND NOT draft"
            " AND deleted_at IS NULL ORDER BY created_at DESC, submission_id DESC OFFSET %s LIMIT 1",
            (form_id, count // 2),
        )
    ).fetchone()
    assert middle is not None
    deep = Cursor(middle[0], middle[1]).encode()
    svc = f"/v1/projects/{project}/forms/{FORM_ID}.svc"

    def get(path: str, **params: str) -> Callable[[], Awaitable[object]]:
        async def call() -> None:
            response = await http.get(path, params=params, headers=auth)
            assert response.status_code == 200, response.text[:300]
            response.json()

        return call

    def sql(query: str, *args: object) -> Callable[[], Awaitable[object]]:
        async def call() -> None:
            await (await pg.execute(query, args)).fetchall()  # type: ignore[arg-type]

        return call

    repeat_page = (
        "SELECT r.*, s.created_at, s.instance_id FROM aggregation.repeat_rows r JOIN aggregation.rows s"
        " ON s.submission_id = r.submission_id WHERE s.form_id = %s AND NOT s.draft AND s.deleted_at IS NULL"
        " AND r.form_id = %s AND NOT r.draft AND r.repeat_path = '/member'"
        " ORDER BY s.created_at DESC, s.submission_id DESC, r.seq LIMIT 250"
    )
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "baseline: GET /healthz (HTTP floor)": get("/healthz"),
        "baseline: bare SELECT root page (250)": sql(
            ROWS + " ORDER BY created_at DESC, submission_id DESC LIMIT 250", form_id
        ),
        "baseline: bare SELECT repeat page (250)": sql(repeat_page, form_id, form_id),
        "baseline: bare SELECT deep keyset page": sql(
            ROWS + " AND (created_at, submission_id) < (%s, %s)"
            " ORDER BY created_at DESC, submission_id DESC LIMIT 250",
            form_id,
            middle[0],
            middle[1],
        ),
        "baseline: bare SELECT count(*)": sql(COUNT, form_id),
        "root first page $top=250": get(svc + "/Submissions", **{"$top": str(PAGE)}),
        "repeat first page $top=250": get(svc + "/Submissions.member", **{"$top": str(PAGE)}),
        f"deep page ($skiptoken at row {count // 2})": get(
            svc + "/Submissions", **{"$top": str(PAGE), "$skiptoken": deep}
        ),
        "$count alone ($top=0)": get(svc + "/Submissions", **{"$top": "0", "$count": "true"}),
    }
    if summary:
        cases["summary (every question)"] = get(f"/v1/projects/{project}/forms/{FORM_ID}/summary")
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for call in cases.values():  # warm-up
        await call()
    for _ in range(rounds):
        for name, call in cases.items():
            samples[name].append(await timed(call))
    print(f"\n{'case':<48} {'median ms':>10} {'min ms':>8} {'max ms':>8}   (n={rounds}, {count} submissions)")
    for name, values in samples.items():
        print(f"{name:<48} {statistics.median(values):>10.1f} {min(values):>8.1f} {max(values):>8.1f}")
    await pg.close()


def copy_baseline(url: str, form_id: int) -> dict[str, float]:
    """PostgreSQL's own CSV of the same rows, in the export's order, drained by psycopg."""
    started = time.perf_counter()
    size = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for statement in (
            "COPY (SELECT created_at, instance_id, submitter_id, attachments_present, attachments_expected,"
            " review_state, device_id, edits, form_version, data FROM aggregation.rows"
            " WHERE form_id = %(form)s AND NOT draft AND deleted_at IS NULL"
            " ORDER BY created_at DESC, submission_id DESC) TO STDOUT (FORMAT csv)",
            "COPY (SELECT r.key, r.parent_key, r.data FROM aggregation.repeat_rows r"
            " JOIN aggregation.rows s ON s.submission_id = r.submission_id"
            " WHERE s.form_id = %(form)s AND NOT s.draft AND s.deleted_at IS NULL"
            " AND r.repeat_path = '/member'"
            " ORDER BY s.created_at DESC, s.submission_id DESC, r.seq) TO STDOUT (FORMAT csv)",
        ):
            with cur.copy(statement, {"form": form_id}) as copy:
                for chunk in copy:
                    size += len(chunk)
    return {"seconds": time.perf_counter() - started, "bytes": size}


async def child_export(url: str, data_dir: Path, project: int, out: Path) -> dict[str, float]:
    from odk_mcp.services.aggregation.exports import ExportFormat, ExportOptions

    async with open_container(settings_for(url, data_dir), migrate=False) as container:
        exports = container.exports.exports
        started = time.perf_counter()
        prepared = await exports.prepare(
            SYSTEM, project, FORM_ID, False, ExportFormat.CSV_ZIP, ExportOptions()
        )
        size = 0
        with out.open("wb") as sink:
            async for chunk in exports.stream(prepared):
                size += len(chunk)
                sink.write(chunk)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes": size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def export_rounds(url: str, data_dir: Path, project: int, rounds: int) -> None:
    with psycopg.connect(url) as pg:
        form_id, count = pg.execute(
            "SELECT form_id, count(*) FROM aggregation.rows WHERE project_id = %s GROUP BY form_id",
            (project,),
        ).fetchone()  # type: ignore[misc]
    out = data_dir / "scale-export.zip"
    base_runs, ours = [], []
    for _ in range(rounds):
        base_runs.append(copy_baseline(url, form_id))
        command = [sys.executable, __file__, "--child", url, str(data_dir), str(project), str(out)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
        ours.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(
            f"  round: export {ours[-1]['seconds']:.1f} s, COPY {base_runs[-1]['seconds']:.1f} s", flush=True
        )
    out.unlink(missing_ok=True)
    base_s = statistics.median(r["seconds"] for r in base_runs)
    our_s = statistics.median(r["seconds"] for r in ours)
    rss = max(r["peak_rss_mb"] for r in ours)
    print(
        f"\nCSV zip export of {count} submissions ({count * 5} repeat rows), median of {rounds}:"
        f" {our_s:.1f} s = {count / our_s:.0f} submissions/s, zip {ours[-1]['bytes'] / 1e6:.0f} MB,"
        f" peak RSS {rss:.0f} MB | COPY baseline {base_s:.1f} s, {base_runs[-1]['bytes'] / 1e6:.0f} MB csv"
        f" | ours at {100 * base_s / our_s:.0f} % of COPY speed"
    )


async def run(args: argparse.Namespace, url: str, data_dir: Path) -> int:
    async with open_container(settings_for(url, data_dir), migrate=False) as container:
        app = create_app(container=container)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as http:
            auth, project = await set_up(container, http)
            if not args.no_load:
                await load(container, url, project, args.submissions, args.batch, args.workers)
            if not args.load_only:
                await pages(container, http, auth, url, project, args.rounds, not args.no_summary)
    return project


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, data_dir, project, out = sys.argv[2:6]
        print(json.dumps(asyncio.run(child_export(url, Path(data_dir), int(project), Path(out)))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=1_000_000)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="kept between runs (default: a temporary one)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--export-rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="processes reading the XML during the import")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--no-load", action="store_true", help="measure what the data dir holds")
    parser.add_argument("--no-summary", action="store_true")
    args = parser.parse_args()
    configure_logging("ERROR", json_lines=True)
    with tempfile.TemporaryDirectory(prefix="odk-scale-") as tmp:
        data_dir = (args.data_dir or Path(tmp)).resolve()
        pg = EmbeddedPostgres(data_dir / "pgdata")
        url = pg.start()
        try:
            print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}; data dir {data_dir}")
            if not args.no_load:  # (a kept data dir can also be measured with older code)
                migrations.upgrade(url)
            project = asyncio.run(run(args, url, data_dir))
            if not args.load_only and args.export_rounds > 0:
                export_rounds(url, data_dir, project, args.export_rounds)
            print(f"load average at the end: {os.getloadavg()}")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
