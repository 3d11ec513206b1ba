"""OData feeds and summaries on the read model, at a given number of submissions.

Loads N submissions of the 30-question household form with a 5-member repeat (the ingestion
benchmark's form, with varied answers) through the submissions service's bulk import (not
HTTP; it writes the read model in the same transaction), times `Projector.rebuild` of that
read model (the catch-up path), then measures,
through the real app in-process (httpx ASGI transport, Bearer session), in interleaved
rounds:

- the root table's first page (`$top=250`), with and without `$count=true`;
- `$count` alone (`$top=0&$count=true`);
- the repeat table's first page;
- a deep page: `$skiptoken` at row N/2 (same order as the first page);
- a first page filtered on a field (`hh_size gt 5`, JSONB cast) and on a field value
  (`district eq 'district_042'`, GIN containment);
- the summary endpoint (every question);

each beside same-run baselines: the bare indexed `SELECT … ORDER BY created_at DESC,
submission_id DESC LIMIT 250` of the same page (and `count(*)`, and the repeat page's join)
on a psycopg connection, and `GET /healthz` through the same app (the HTTP floor).

Usage: python bench/odata.py [--submissions 30000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingestion import INSTANCE_MARK, LISTS, submission_xml, xform

from odk_mcp.bootstrap import build_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.aggregation.odata.options import Cursor
from odk_mcp.services.submissions import ImportDocument
from odk_mcp.settings import Settings

EMAIL, PASSWORD = "bench@example.org", "bench password 123"
PAGE = 250


def varied(template: bytes, rng: random.Random) -> bytes:
    text = template.decode()
    text = text.replace(INSTANCE_MARK, f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}")
    text = text.replace("<hh_size>5</hh_size>", f"<hh_size>{rng.randint(1, 12)}</hh_size>")
    text = text.replace("district_042", rng.choice(LISTS["district"]))
    text = text.replace("<livestock>6</livestock>", f"<livestock>{rng.randint(0, 40)}</livestock>")
    text = text.replace(
        "<income_month>85000.50</income_month>", f"<income_month>{rng.uniform(0, 2e5):.2f}</income_month>"
    )
    return text.encode()


async def load(container: object, project_id: int, count: int) -> float:
    importer = container.submissions.importer  # type: ignore[attr-defined]
    template = submission_xml()
    rng = random.Random(7)  # noqa: S311 - test data
    documents = (ImportDocument(varied(template, rng)) for _ in range(count))
    started = time.perf_counter()
    await importer.import_many(SYSTEM, project_id, "household", documents, batch_size=1000, workers=1)
    return time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def run(url: str, data_dir: Path, count: int, rounds: int) -> None:
    settings = Settings(database_url=url, data_dir=data_dir, log_level="ERROR", worker_in_process=False)  # type: ignore[call-arg]
    container = build_container(settings, url)
    await container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, "Bench")
    await container.users.accounts.promote(SYSTEM, EMAIL)
    app = create_app(container=container)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=120)
    login = await client.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
    auth = {"Authorization": "Bearer " + login.json()["token"]}
    project = (await client.post("/v1/projects", json={"name": "Bench"}, headers=auth)).json()["id"]
    created = await client.post(
        f"/v1/projects/{project}/forms",
        content=xform(),
        params={"publish": "true"},
        headers={**auth, "Content-Type": "application/xml"},
    )
    assert created.status_code == 200, created.text

    load_s = await load(container, project, count)
    print(f"imported {count} submissions in {load_s:.1f} s ({count / load_s:.0f}/s)")
    started = time.perf_counter()
    rebuilt = await container.aggregation.projector.rebuild()
    rebuild_s = time.perf_counter() - started
    print(
        f"rebuilt the read model of {rebuilt} submissions in {rebuild_s:.1f} s ({rebuilt / rebuild_s:.0f}/s)"
    )

    pg = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await pg.execute("VACUUM ANALYZE aggregation.rows")
    await pg.execute("VACUUM ANALYZE aggregation.repeat_rows")
    form_id = (await (await pg.execute("SELECT DISTINCT form_id FROM aggregation.rows")).fetchone())[0]  # type: ignore[index]
    middle = await (
        await pg.execute(
            "SELECT created_at, submission_id FROM aggregation.rows WHERE form_id = %s AND NOT draft"
            " AND deleted_at IS NULL ORDER BY created_at DESC, submission_id DESC OFFSET %s LIMIT 1",
            (form_id, count // 2),
        )
    ).fetchone()
    assert middle is not None
    deep = Cursor(middle[0], middle[1]).encode()

    svc = f"/v1/projects/{project}/forms/household.svc"

    def get(path: str, **params: str) -> Callable[[], Awaitable[object]]:
        async def call() -> None:
            response = await client.get(path, params=params, headers=auth)
            assert response.status_code == 200, response.text[:300]
            response.json()

        return call

    def sql(query: str, *args: object) -> Callable[[], Awaitable[object]]:
        async def call() -> None:
            await (await pg.execute(query, args)).fetchall()  # type: ignore[arg-type]

        return call

    root_page = (
        "SELECT * FROM aggregation.rows WHERE form_id = %s AND draft = false AND deleted_at IS NULL"
        " ORDER BY created_at DESC, submission_id DESC LIMIT 250"
    )
    repeat_page = (
        "SELECT r.*, s.created_at, s.instance_id FROM aggregation.repeat_rows r JOIN aggregation.rows s"
        " ON s.submission_id = r.submission_id WHERE s.form_id = %s AND NOT s.draft AND s.deleted_at IS NULL"
        " AND r.form_id = %s AND NOT r.draft AND r.repeat_path = '/member'"
        " ORDER BY s.created_at DESC, s.submission_id DESC, r.seq LIMIT 250"
    )
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "baseline: GET /healthz (HTTP floor)": get("/healthz"),
        "baseline: bare SELECT root page (250)": sql(root_page, form_id),
        "baseline: bare SELECT count(*)": sql(
            "SELECT count(*) FROM aggregation.rows WHERE form_id = %s AND NOT draft AND deleted_at IS NULL",
            form_id,
        ),
        "baseline: bare SELECT repeat page (250)": sql(repeat_page, form_id, form_id),
        "root first page $top=250": get(svc + "/Submissions", **{"$top": str(PAGE)}),
        "root first page + $count": get(svc + "/Submissions", **{"$top": str(PAGE), "$count": "true"}),
        "$count alone ($top=0)": get(svc + "/Submissions", **{"$top": "0", "$count": "true"}),
        "repeat first page $top=250": get(svc + "/Submissions.member", **{"$top": str(PAGE)}),
        f"deep page ($skiptoken at row {count // 2})": get(
            svc + "/Submissions", **{"$top": str(PAGE), "$skiptoken": deep}
        ),
        "filter hh_size gt 5, $top=250": get(
            svc + "/Submissions", **{"$top": str(PAGE), "$filter": "hh_size gt 5"}
        ),
        "filter district eq (GIN), $top=250": get(
            svc + "/Submissions", **{"$top": str(PAGE), "$filter": "district eq 'district_042'"}
        ),
        "summary (every question)": get(f"/v1/projects/{project}/forms/household/summary"),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for call in cases.values():  # warm-up
        await call()
    for _ in range(rounds):
        for name, call in cases.items():
            samples[name].append(await timed(call))
    print(f"\n{'case':<48} {'median ms':>10} {'p90 ms':>8}   (n={rounds}, {count} submissions)")
    for name, values in samples.items():
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
        print(f"{name:<48} {statistics.median(values):>10.1f} {p90:>8.1f}")
    await pg.close()
    await client.aclose()
    await container.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    configure_logging("ERROR", json_lines=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata")
        url = server.start()
        try:
            migrations.upgrade(url)
            asyncio.run(run(url, Path(tmp) / "data", args.submissions, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
