"""Entity lists at scale: the CSV download ODK Collect makes (a form attachment) and the OData
first page, against a same-run `COPY` / plain `SELECT` of the same rows as baselines; and the
owner-only download of a data collector who created 1 % of the list (the form attachment as
that collector receives it) against a same-run `COPY` of their rows.

Starts a fresh embedded PostgreSQL, fills one list with N entities (5 properties, written
straight into the tables: the fill is setup, not measured), serves the real app with uvicorn
on a loopback port in a thread, and downloads over real HTTP. Methods are interleaved in rounds.
Downloads are made by curl in its own process; the peak RSS growth of the server's process
during the CSV downloads is reported.

Usage: python bench/entities.py [--sizes 100000,1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
import uvicorn

from odk_mcp.bootstrap import build_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.users import Scope
from odk_mcp.settings import Settings

EMAIL, PASSWORD = "bench@example.org", "bench password 123"
COLLECTOR = "collector@example.org"
OWNER_SHARE = 100  # the collector created one entity in this many
FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>Tree visit</h:title>
    <model>
      <instance><data id="tree_visit"><tree/><meta><instanceID/></meta></data></instance>
      <instance id="trees" src="jr://file-csv/trees.csv"/>
      <bind nodeset="/data/tree" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
    </model>
  </h:head>
  <h:body><input ref="/data/tree"><label>Tree</label></input></h:body>
</h:html>"""
CURL = shutil.which("curl") or "/usr/bin/curl"
PROPERTIES = ("species", "height", "girth", "district", "notes")

FILL = """
WITH made AS (
    INSERT INTO entities.entities (dataset_id, uuid, label, data, version, creator_id, created_at)
    SELECT %(dataset)s, gen_random_uuid(), 'Tree ' || g,
           jsonb_build_object('species', (ARRAY['oak','ash','elm','fir','yew'])[1 + g %% 5],
                              'height', (g %% 40)::text, 'girth', (g %% 300)::text,
                              'district', 'District ' || (g %% 97), 'notes', md5(g::text)),
           1, 1, now()
    FROM generate_series(%(start)s::integer, %(stop)s::integer) AS g
    RETURNING id, label, data
)
INSERT INTO entities.versions (entity_id, version, label, data, data_received, resolved, creator_id,
                               source, created_at)
SELECT id, 1, label, data, data, false, 1, '{"type": "bulk"}'::jsonb, now() FROM made
"""

_COLUMNS = ", ".join(f"data ->> '{p}' AS {p}" for p in PROPERTIES)  # constants, not input
BASELINE_CSV = (
    f"COPY (SELECT uuid AS name, label, version AS __version, {_COLUMNS}"  # noqa: S608
    " FROM entities.entities WHERE dataset_id = %s AND deleted_at IS NULL ORDER BY id)"
    " TO STDOUT (FORMAT csv, HEADER true)"
)
BASELINE_OWNER_CSV = BASELINE_CSV.replace("deleted_at IS NULL", "deleted_at IS NULL AND creator_id = %s")
BASELINE_PAGE = (
    "SELECT id, uuid, label, data, version, conflict, creator_id, created_at, updated_at"
    " FROM entities.entities WHERE dataset_id = %s AND deleted_at IS NULL ORDER BY id DESC LIMIT 251"
)


def serve(settings: Settings, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup(url: str, data_dir: Path) -> tuple[Settings, int, int, int]:
    settings = Settings(database_url=url, data_dir=data_dir, log_level="ERROR")  # type: ignore[call-arg]

    async def create() -> tuple[int, int, int]:
        container = build_container(settings, url)
        try:
            await container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, "Bench")
            await container.users.accounts.promote(SYSTEM, EMAIL)
            project = await container.forms.projects.create(SYSTEM, "Bench", None)
            detail = await container.entities.datasets.create(
                SYSTEM, project.id, "trees", False, list(PROPERTIES)
            )
            collector = await container.users.accounts.create_user(SYSTEM, COLLECTOR, PASSWORD, "Collector")
            await container.users.assignments.assign(SYSTEM, Scope(project.id), "formfill", collector.id)
            return project.id, detail.dataset.id, collector.id
        finally:
            await container.db.dispose()

    project, dataset, collector = asyncio.run(create())
    return settings, project, dataset, collector


def fill(url: str, dataset: int, start: int, stop: int, collector: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        step = 100_000
        for low in range(start, stop + 1, step):
            conn.execute(FILL, {"dataset": dataset, "start": low, "stop": min(stop, low + step - 1)})
        conn.execute(
            "UPDATE entities.entities SET creator_id = %s WHERE dataset_id = %s AND id %% %s = 0",
            (collector, dataset, OWNER_SHARE),
        )
        conn.execute(
            "UPDATE entities.datasets SET revision = revision + 1, live_entities = %s, owner_only = true"
            " WHERE id = %s",
            (stop, dataset),
        )
        conn.execute("VACUUM ANALYZE entities.entities")


def timed_copy(url: str, dataset: int, owner: int | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    size = 0
    statement, args = (BASELINE_CSV, (dataset,)) if owner is None else (BASELINE_OWNER_CSV, (dataset, owner))
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(statement, args) as copy:
        for chunk in copy:
            size += len(chunk)
    return time.perf_counter() - started, size


def timed_select(url: str, dataset: int) -> float:
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        rows = conn.execute(BASELINE_PAGE, (dataset,)).fetchall()
        assert len(rows) == 251
        return time.perf_counter() - started


def timed_get(http: httpx.Client, path: str, token: str | None = None) -> tuple[float, int]:
    """Download with curl in its own process (so the client does not share the server's GIL);
    curl's own total time and size."""
    url = str(http.base_url).rstrip("/") + path
    auth = f"Authorization: {f'Bearer {token}' if token else http.headers['Authorization']}"
    result = subprocess.run(  # noqa: S603 - our own URL and token
        [
            CURL,
            "-sS",
            "-g",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_total} %{size_download}",
            "-H",
            auth,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    status, seconds, size = result.stdout.split()
    assert status == "200", (path, result.stdout)
    return float(seconds), int(size)


@dataclass(frozen=True)
class Owner:
    id: int
    token: str
    attachment: str  # the form attachment path the collector downloads


def run_size(
    url: str, http: httpx.Client, project: int, dataset: int, n: int, rounds: int, owner: Owner
) -> None:
    base = f"/v1/projects/{project}/datasets/trees"
    samples: dict[str, list[float]] = {
        k: [] for k in ("copy", "csv", "select", "page", "page+count", "filter", "owner-copy", "owner-csv")
    }
    sizes: dict[str, int] = {}
    process = psutil.Process()
    rss_before = process.memory_info().rss
    peak = rss_before
    for _ in range(rounds):
        seconds, sizes["copy"] = timed_copy(url, dataset)
        samples["copy"].append(seconds)
        seconds, sizes["csv"] = timed_get(http, f"{base}/entities.csv")
        samples["csv"].append(seconds)
        peak = max(peak, process.memory_info().rss)
        samples["select"].append(timed_select(url, dataset))
        samples["page"].append(timed_get(http, f"{base}.svc/Entities?$top=250")[0])
        samples["page+count"].append(timed_get(http, f"{base}.svc/Entities?$top=250&$count=true")[0])
        samples["filter"].append(timed_get(http, f"{base}.svc/Entities?$top=250&$filter=height%20gt%2038")[0])
        seconds, sizes["owner-copy"] = timed_copy(url, dataset, owner.id)
        samples["owner-copy"].append(seconds)
        seconds, sizes["owner-csv"] = timed_get(http, owner.attachment, owner.token)
        samples["owner-csv"].append(seconds)
    med = {k: statistics.median(v) for k, v in samples.items()}
    mb = sizes["csv"] / 1e6
    print(f"\n{n:,} entities, {rounds} rounds (medians); CSV {mb:.1f} MB, COPY {sizes['copy'] / 1e6:.1f} MB")
    copy_rate = sizes["copy"] / 1e6 / med["copy"]
    print(f"  COPY TO STDOUT (baseline)       {med['copy']:8.3f} s  {copy_rate:7.1f} MB/s")
    print(
        f"  GET …/entities.csv, curl over HTTP    {med['csv']:8.3f} s  {mb / med['csv']:7.1f} MB/s"
        f"  = {med['copy'] / med['csv'] * 100:5.1f} % of COPY"
    )
    print(f"  peak RSS growth during downloads {(peak - rss_before) / 1e6:7.1f} MB")
    print(f"  SELECT first page, psycopg (baseline) {med['select'] * 1000:8.2f} ms")
    print(f"  OData $top=250                  {med['page'] * 1000:8.2f} ms")
    print(f"  OData $top=250&$count=true      {med['page+count'] * 1000:8.2f} ms")
    print(f"  OData $top=250&$filter=height gt 38 {med['filter'] * 1000:8.2f} ms")
    assert sizes["owner-csv"] == sizes["owner-copy"], sizes
    print(
        f"  owner-only ({sizes['owner-csv'] / 1e6:.2f} MB, 1/{OWNER_SHARE} of the list):"
        f" COPY (baseline) {med['owner-copy'] * 1000:8.2f} ms,"
        f" collector's form attachment {med['owner-csv'] * 1000:8.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    configure_logging("ERROR", json_lines=True)
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata")
        url = pg.start()
        try:
            migrations.upgrade(url)
            settings, project, dataset, collector = setup(url, Path(tmp) / "data")
            port = free_port()
            server = serve(settings, port)
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
            token = http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD}).json()["token"]
            http.headers["Authorization"] = f"Bearer {token}"
            published = http.post(
                f"/v1/projects/{project}/forms?publish=true",
                content=FORM,
                headers={"Content-Type": "application/xml"},
            )
            assert published.status_code == 200, published.text
            login = http.post("/v1/sessions", json={"email": COLLECTOR, "password": PASSWORD})
            owner = Owner(
                collector,
                login.json()["token"],
                f"/v1/projects/{project}/forms/tree_visit/attachments/trees.csv",
            )
            filled = 0
            for n in sorted(sizes):
                started = time.perf_counter()
                fill(url, dataset, filled + 1, n, collector)
                print(f"filled {n - filled:,} entities in {time.perf_counter() - started:.1f} s (setup)")
                filled = n
                run_size(url, http, project, dataset, n, args.rounds, owner)
            server.should_exit = True
            http.close()
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
