"""CSV zip export speed and memory, against PostgreSQL's own `COPY … TO STDOUT` of the same rows.

Target (../shared/PERFORMANCE.md): streamed, peak RSS < 300 MB at any size, ≥ 50 % of the
speed of `COPY … TO` on the same rows.

Set-up: an embedded PostgreSQL, migrated; a realistic 30-question form (text, numbers, dates,
selects, a select_multiple, a geopoint, a group, a repeat of 3 questions) published over HTTP;
then N submissions written straight into the read model (`aggregation.rows`, and 3 repeat
rows each in `aggregation.repeat_rows`) with COPY: exports read only the read model, and
filling it through the ingestion path would measure ingestion.

Each round, interleaved: (1) the baseline, `COPY (SELECT … ORDER BY created_at DESC,
submission_id DESC) TO STDOUT (FORMAT csv)` of the root rows and then of the repeat rows,
drained by psycopg; (2) our export (`Exports.prepare` + `stream`, the code behind
`GET …/submissions.csv.zip`) in a fresh child process writing the zip to a file, which reports
its time, bytes and peak RSS (`ru_maxrss`, the whole process: interpreter, libraries and all).
Medians of the rounds are printed.

    python bench/export.py [--sizes 10000 100000] [--rounds 3]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres

FORM_ID = "bench_export"
CHOICES = ["alpha", "beta", "gamma", "delta", "epsilon"]


def xform() -> bytes:
    """30 questions: 24 at the root (one in a group), a geopoint, a select_multiple, and a
    repeat of 3; plus meta/instanceID."""
    kinds = ["string", "int", "decimal", "date", "select1", "string"] * 4
    root = [(f"q{i:02d}", kind) for i, kind in enumerate(kinds)]
    instance = "".join(f"<{name}/>" for name, _ in root)
    binds = "".join(
        f'<bind nodeset="/data/{n}" type="{"string" if k == "select1" else k}"/>' for n, k in root
    )
    body = ""
    for name, kind in root:
        if kind == "select1":
            items = "".join(f"<item><label>{c.title()}</label><value>{c}</value></item>" for c in CHOICES)
            body += f'<select1 ref="/data/{name}"><label>{name}</label>{items}</select1>'
        else:
            body += f'<input ref="/data/{name}"><label>{name}</label></input>'
    items = "".join(f"<item><label>{c.title()}</label><value>{c}</value></item>" for c in CHOICES)
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head><h:title>Bench</h:title><model>
    <instance><data id="{FORM_ID}" version="1">{instance}
      <grp><inner/></grp><location/><tags/>
      <member jr:template=""><mname/><mage/><mrole/></member>
      <meta><instanceID/></meta></data></instance>
    {binds}
    <bind nodeset="/data/grp/inner" type="string"/>
    <bind nodeset="/data/location" type="geopoint"/>
    <bind nodeset="/data/tags" type="string"/>
    <bind nodeset="/data/member/mname" type="string"/>
    <bind nodeset="/data/member/mage" type="int"/>
    <bind nodeset="/data/member/mrole" type="string"/>
    <bind nodeset="/data/meta/instanceID" type="string"/>
  </model></h:head>
  <h:body>{body}
    <group ref="/data/grp"><input ref="/data/grp/inner"><label>Inner</label></input></group>
    <input ref="/data/location"><label>Where</label></input>
    <select ref="/data/tags"><label>Tags</label>{items}</select>
    <repeat nodeset="/data/member">
      <input ref="/data/member/mname"><label>Name</label></input>
      <input ref="/data/member/mage"><label>Age</label></input>
      <input ref="/data/member/mrole"><label>Role</label></input>
    </repeat>
  </h:body>
</h:html>""".encode()


def root_data(rng: random.Random, i: int, instance_id: str) -> dict[str, object]:
    data: dict[str, object] = {}
    kinds = ["string", "int", "decimal", "date", "select1", "string"] * 4
    for n, kind in enumerate(kinds):
        path = f"/q{n:02d}"
        if kind == "int":
            data[path] = rng.randint(0, 120)
        elif kind == "decimal":
            data[path] = round(rng.uniform(0, 10_000), 2)
        elif kind == "date":
            data[path] = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        elif kind == "select1":
            data[path] = rng.choice(CHOICES)
        else:
            data[path] = f"answer {i} to q{n:02d}, with some words"
    data["/grp/inner"] = "inside"
    data["/location"] = f"{rng.uniform(-60, 60):.6f} {rng.uniform(-170, 170):.6f} 1200 5"
    data["/tags"] = " ".join(rng.sample(CHOICES, 2))
    data["/meta/instanceID"] = instance_id
    return data


async def publish(url: str, data_dir: Path) -> tuple[int, int, int]:
    """Publish the form over HTTP as an administrator; returns project id, form id, def id."""
    from odk_mcp.bootstrap import open_container
    from odk_mcp.gateway import create_app
    from odk_mcp.kernel.actor import SYSTEM
    from odk_mcp.services.forms import FormTarget
    from odk_mcp.settings import Settings

    settings = Settings(database_url=url, data_dir=data_dir, log_level="ERROR")  # type: ignore[call-arg]
    async with open_container(settings, migrate=False) as container:
        await container.users.accounts.create_user(SYSTEM, "bench@example.org", "bench-password-1", None)
        await container.users.accounts.promote(SYSTEM, "bench@example.org")
        transport = httpx.ASGITransport(app=create_app(container=container))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            token = (
                await http.post(
                    "/v1/sessions", json={"email": "bench@example.org", "password": "bench-password-1"}
                )
            ).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            pid = (await http.post("/v1/projects", json={"name": "Bench"}, headers=auth)).json()["id"]
            published = await http.post(
                f"/v1/projects/{pid}/forms",
                content=xform(),
                params={"publish": "true"},
                headers={**auth, "Content-Type": "application/xml"},
            )
            assert published.status_code == 200, published.text
        target = await container.forms.lookup.for_submission(pid, FORM_ID, "1")
        assert isinstance(target, FormTarget)
        return int(pid), target.form_id, target.def_id


def load(url: str, project_id: int, form_id: int, def_id: int, start: int, count: int) -> None:
    """COPY `count` submissions (ids from `start`) and 3 repeat rows each into the read model."""
    rng = random.Random(start)  # noqa: S311 - synthetic data
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        columns = (
            "submission_id, project_id, form_id, xml_form_id, draft, instance_id, version_id,"
            " current_instance_id, form_def_id, form_version, instance_name, submitter_id, device_id,"
            " user_agent, review_state, created_at, updated_at, deleted_at, edits, attachments_expected,"
            " attachments_present, flag_count, finding_count, data, event_id"
        )
        with cur.copy(f"COPY aggregation.rows ({columns}) FROM STDIN") as copy:
            for i in range(start, start + count):
                instance_id = f"uuid:{uuid.UUID(int=i)}"
                review = rng.choice([None, "approved", "hasIssues"])
                data = json.dumps(root_data(rng, i, instance_id))
                copy.write_row(
                    (i, project_id, form_id, FORM_ID, False, instance_id, i, instance_id, def_id, "1",
                     None, None, f"collect:{i % 50}", "bench", review, base + timedelta(seconds=i),
                     None, None, 0, 0, 0, 0, 0, data, 0)
                )  # fmt: skip
        with cur.copy(
            "COPY aggregation.repeat_rows (submission_id, form_id, draft, repeat_path, key, parent_key,"
            " ordinal, seq, data) FROM STDIN"
        ) as copy:
            for i in range(start, start + count):
                instance_id = f"uuid:{uuid.UUID(int=i)}"
                for k in range(1, 4):
                    data = {
                        "/member/mname": f"member {k}",
                        "/member/mage": rng.randint(1, 90),
                        "/member/mrole": "x",
                    }
                    copy.write_row(
                        (i, form_id, False, "/member", f"{instance_id}/member[{k}]", instance_id, k, k,
                         json.dumps(data))
                    )  # fmt: skip
        conn.commit()
        conn.execute("ANALYZE aggregation.rows")
        conn.execute("ANALYZE aggregation.repeat_rows")
        conn.commit()


def baseline(url: str, form_id: int) -> dict[str, float]:
    """PostgreSQL's own CSV of the same rows, in the same order, drained by psycopg."""
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


async def child_export(url: str, data_dir: Path, project_id: int, out: Path | None) -> dict[str, float]:
    """The export in this (fresh) process; with no `out`, only open the container (the
    process's footprint before any export)."""
    from odk_mcp.bootstrap import open_container
    from odk_mcp.kernel.actor import SYSTEM
    from odk_mcp.services.aggregation.exports import ExportFormat, ExportOptions
    from odk_mcp.settings import Settings

    settings = Settings(database_url=url, data_dir=data_dir, log_level="ERROR")  # type: ignore[call-arg]
    async with open_container(settings, migrate=False) as container:
        if out is None:
            return {
                "seconds": 0.0,
                "bytes": 0,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        exports = container.exports.exports
        started = time.perf_counter()
        prepared = await exports.prepare(
            SYSTEM, project_id, FORM_ID, False, ExportFormat.CSV_ZIP, ExportOptions()
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


def run_child(url: str, data_dir: Path, project_id: int, out: Path | None) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", url, str(data_dir), str(project_id), str(out or "-")]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, data_dir, project_id, out = sys.argv[2:6]
        target = None if out == "-" else Path(out)
        print(json.dumps(asyncio.run(child_export(url, Path(data_dir), int(project_id), target))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="odk-export-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        pg = EmbeddedPostgres(data_dir / "pgdata")
        url = pg.start()
        try:
            migrations.upgrade(url)
            project_id, form_id, def_id = asyncio.run(publish(url, data_dir))
            idle = run_child(url, data_dir, project_id, None)
            print(
                f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; form: 30 questions + repeat"
                f" of 3; a child that only opens the container peaks at {idle['peak_rss_mb']:.0f} MB RSS"
            )
            loaded = 0
            for size in sorted(args.sizes):
                load(url, project_id, form_id, def_id, loaded + 1, size - loaded)
                loaded = size
                base_runs, ours = [], []
                for _ in range(args.rounds):
                    base_runs.append(baseline(url, form_id))
                    ours.append(run_child(url, data_dir, project_id, Path(tmp) / "out.zip"))
                base_s = statistics.median(r["seconds"] for r in base_runs)
                our_s = statistics.median(r["seconds"] for r in ours)
                rss = max(r["peak_rss_mb"] for r in ours)
                zipped, copied = ours[-1]["bytes"] / 1e6, base_runs[-1]["bytes"] / 1e6
                print(
                    f"{size:>8} submissions ({size * 3} repeat rows): export {our_s:6.2f} s"
                    f" = {size / our_s:8.0f} rows/s, zip {zipped:6.1f} MB, peak RSS {rss:5.0f} MB"
                    f" | COPY baseline {base_s:5.2f} s = {size / base_s:8.0f} rows/s, {copied:6.1f} MB csv"
                    f" | ours at {100 * base_s / our_s:4.0f} % of COPY"
                )
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
