"""The columnar cache answers exactly what a fresh SQL computation over the read model answers:
summaries (root and repeat questions, with and without `$filter`), analysis frames, crosstabs
and time series, after every kind of change once the cache was written — new submissions,
edits, review states, deletions, restores, purged rows, a form version that adds and retypes
fields — and after a compaction; a second cache on the same directory (another process)
agrees; the snapshot arithmetic that decides whether files may answer a read is right."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import httpx
from polars.testing import assert_frame_equal
from sqlalchemy import text
from tests.aggregation_forms import (
    Household,
    catch_up,
    create_project,
    edit,
    publish_household,
    publish_v2,
    submit,
    subscribe,
)
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.aggregation import ColumnCache, text_column
from odk_mcp.services.aggregation.columns_io import contains
from odk_mcp.services.analytics import result_json
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.statistics import Statistics

FILTERS = [None, "region eq 'north'", "size gt 4", "__system/reviewState eq 'approved'"]


def same(left: Any, right: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 relative (PostgreSQL and Polars sum in different orders)."""
    if isinstance(left, float) and isinstance(right, float):
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9), (where, left, right)
    elif isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys(), (where, left.keys(), right.keys())
        for key in left:
            same(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list) and isinstance(right, list):
        assert len(left) == len(right), (where, left, right)
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            same(a, b, f"{where}[{i}]")
    else:
        assert left == right, (where, left, right)


async def check(container: Container, pid: int, cache: ColumnCache | None = None) -> dict[str, Any]:
    """Every engine pair agrees on the form's current data; answers the unfiltered summary."""
    aggregation = container.aggregation
    cache = cache or aggregation.columns
    assert cache is not None
    form = await aggregation.read_model.form(SYSTEM, pid, "household", False)
    from odk_mcp.services.aggregation.summaries import Summaries

    cached = Summaries(aggregation.read_model, cache)
    answer: dict[str, Any] = {}
    for odata_filter in FILTERS:
        expected = await aggregation.summaries.sql.summarize_form(form, odata_filter)
        got = await cached.summarize_form(form, odata_filter)
        same(got, expected, f"summary[{odata_filter}]")
        if odata_filter is None:
            answer = got
    for odata_filter in FILTERS:  # JSON containment (`region eq 'north'`) included
        by_sql = await FormFrames(aggregation.read_model).load(form, odata_filter=odata_filter)
        by_cache = await FormFrames(aggregation.read_model, cache).load(form, odata_filter=odata_filter)
        assert_frame_equal(by_cache.frame, by_sql.frame)
    sql_stats = Statistics(FormFrames(aggregation.read_model))
    cache_stats = Statistics(FormFrames(aggregation.read_model, cache))
    for odata_filter in (None, "size gt 4"):
        expected_table = await sql_stats.crosstab(
            SYSTEM, pid, "household", "/region", "/grp/consent", odata_filter=odata_filter
        )
        got_table = await cache_stats.crosstab(
            SYSTEM, pid, "household", "/region", "/grp/consent", odata_filter=odata_filter
        )
        same(result_json(got_table), result_json(expected_table), "crosstab")
        for interval, split in (("day", "none"), ("week", "enumerator"), ("day", "form_version")):
            expected_series = await sql_stats.timeseries(
                SYSTEM,
                pid,
                "household",
                interval,
                split,
                "Africa/Nairobi",
                odata_filter,  # type: ignore[arg-type]
            )
            got_series = await cache_stats.timeseries(
                SYSTEM,
                pid,
                "household",
                interval,
                split,
                "Africa/Nairobi",
                odata_filter,  # type: ignore[arg-type]
            )
            same(result_json(got_series), result_json(expected_series), f"timeseries {interval} {split}")
    return answer


def manifest(cache: ColumnCache) -> dict[str, Any]:
    (directory,) = [d for d in cache.directory.iterdir() if d.name.endswith("-published")]
    found: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    return found


async def test_the_cache_equals_sql_through_every_change(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    varied = [
        Household("uuid:c0", region="north", size="3", assets="radio tv", note="ok"),
        Household(
            "uuid:c1", region="south", size="8", income="99.25", assets="", note="", visit_date="2024/02/28"
        ),
        Household(
            "uuid:c2",
            region="elsewhere",
            size="5",
            assets="car  tv",
            consent="no",
            started="2024-03-05T01:00:00",
        ),
        Household("uuid:c3", region="north", size="12", members=[], started="2024-03-04T23:30:00.000-05:00"),
        Household(
            "uuid:c4", region="", size="5", visit_date="2024-02-29", members=[("Ed", "61", ["2024-06-01"])]
        ),
    ]
    for household in varied:
        await submit(client, admin.auth, pid, household)
    await catch_up(container)
    first = await check(container, pid)
    assert first["submissions"] == 5
    cache = container.aggregation.columns
    assert cache is not None
    written = manifest(cache)

    # Changes after the files were written: the delta comes from PostgreSQL.
    await submit(
        client,
        admin.auth,
        pid,
        Household("uuid:c5", region="south", size="2", assets="tv", started="2024-02-02T10:00:00Z"),
    )
    await edit(client, admin.auth, pid, Household("uuid:c0b", deprecated="uuid:c0", region="south", size="7"))
    base = f"/v1/projects/{pid}/forms/household/submissions/"
    reviewed = await client.patch(base + "uuid:c2", json={"reviewState": "approved"}, headers=admin.auth)
    assert reviewed.status_code == 200, reviewed.text
    assert (await client.delete(base + "uuid:c1", headers=admin.auth)).status_code == 200
    await catch_up(container)
    changed = await check(container, pid)
    assert changed["submissions"] == 5
    assert manifest(cache)["snapshot"] == written["snapshot"], "answered from the files plus the delta"

    restored = await client.post(base + "uuid:c1/restore", headers=admin.auth)
    assert restored.status_code == 200, restored.text
    await catch_up(container)
    assert (await check(container, pid))["submissions"] == 6

    # A purged submission (the projector deletes its rows): the tombstone removes it.
    async with container.db.transaction() as conn:
        await conn.execute(
            text(
                "DELETE FROM aggregation.repeat_rows WHERE submission_id ="
                " (SELECT submission_id FROM aggregation.rows WHERE instance_id = 'uuid:c3')"
            )
        )
        await conn.execute(text("DELETE FROM aggregation.rows WHERE instance_id = 'uuid:c3'"))
    assert (await check(container, pid))["submissions"] == 5

    # A new version drops income, adds water and retypes size to text: the files are rebuilt.
    await publish_v2(client, admin, pid)
    await submit(client, admin.auth, pid, Household("uuid:c6", version="2", size="big", water="well"))
    await submit(client, admin.auth, pid, Household("uuid:c7", version="2", size="6", water="tap"))
    await catch_up(container)
    after_v2 = await check(container, pid)
    assert after_v2["submissions"] == 7
    assert manifest(cache)["signature"] != written["signature"]

    # A compaction rewrites the files with the delta; answers stay the same.
    before = manifest(cache)
    await submit(client, admin.auth, pid, Household("uuid:c8", version="2", size="9", water="tap"))
    await catch_up(container)
    eager = ColumnCache(container.aggregation.read_model, cache.directory, compact_rows=0, compact_fraction=0)
    form = await container.aggregation.read_model.form(SYSTEM, pid, "household", False)
    await eager.frames(form, {"": ["submission_id"]})
    await eager.wait_idle()
    compacted = manifest(cache)
    assert compacted["snapshot"] != before["snapshot"] and compacted["rows"] == 8
    assert (await check(container, pid, eager))["submissions"] == 8
    # The default cache (another process, in effect) reads the compacted files too.
    assert (await check(container, pid))["submissions"] == 8
    files = {p.name for p in Path(cache.directory).rglob("*.parquet")}
    assert set(compacted["tables"].values()) <= files


async def test_an_empty_form_and_a_truncated_read_model_answer_empty(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    summary = await check(container, pid)
    assert summary["submissions"] == 0 and summary["submissionsPerDay"] == []
    response = await client.get(f"/v1/projects/{pid}/forms/household/summary", headers=admin.auth)
    assert response.status_code == 200 and response.json()["submissions"] == 0

    await submit(client, admin.auth, pid, Household("uuid:t0"))
    await catch_up(container)
    assert (await check(container, pid))["submissions"] == 1
    # A TRUNCATE fires no row triggers; its statement trigger makes every cache start over.
    async with container.db.transaction() as conn:
        await conn.execute(text("TRUNCATE aggregation.rows, aggregation.repeat_rows"))
    assert (await check(container, pid))["submissions"] == 0
    await container.aggregation.projector.rebuild()
    assert (await check(container, pid))["submissions"] == 1


def test_snapshot_containment() -> None:
    assert contains("100:105:", "100:105:")
    assert contains("100:110:", "100:105:102")  # 102 committed in between
    assert contains("100:110:102", "100:105:102")
    assert not contains("100:105:102", "100:105:")  # the newer one still runs 102: not a superset
    assert not contains("100:104:", "100:105:")
    assert contains("103:110:103,107", "100:105:100,103")
    assert not contains("100:110:101", "100:105:")


async def test_hostile_filters_are_refused_without_touching_the_cache(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    await submit(client, admin.auth, pid, Household("uuid:h0"))
    await catch_up(container)
    url = f"/v1/projects/{pid}/forms/household/summary"
    hostile = "region eq 'x''); DROP TABLE aggregation.rows; --'"
    response = await client.get(url, params={"$filter": hostile}, headers=admin.auth)
    assert response.status_code == 200, response.text
    assert response.json()["submissions"] == 0
    assert (await client.get(url, headers=admin.auth)).json()["submissions"] == 1
    bad = await client.get(url, params={"$filter": "size eq"}, headers=admin.auth)
    assert bad.status_code == 400


async def test_concurrent_first_reads_build_once(
    client: httpx.AsyncClient, container: Container, admin: Person, tmp_path: Path
) -> None:
    """Caches of several processes (separate objects on one directory) reading a form at the
    same time: one build under the file lock, the others wait and use it; equal answers."""
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    for n in range(3):
        await submit(client, admin.auth, pid, Household(f"uuid:p{n}", region=["north", "south"][n % 2]))
    await catch_up(container)
    read_model = container.aggregation.read_model
    form = await read_model.form(SYSTEM, pid, "household", False)
    caches = [ColumnCache(read_model, tmp_path / "shared") for _ in range(2)]
    wanted = {"": ["submission_id", text_column("/region")], "/hh/member": [text_column("/hh/member/mname")]}
    answers = await asyncio.gather(*(caches[i % 2].frames(form, wanted) for i in range(4)))
    for other in answers[1:]:
        for table in wanted:
            assert_frame_equal(
                other[table].sort(other[table].columns), answers[0][table].sort(answers[0][table].columns)
            )
    assert sorted(answers[0][""]["t:/region"].to_list()) == ["north", "north", "south"]
    assert answers[0]["/hh/member"].height == 6
    (directory,) = (tmp_path / "shared").iterdir()
    assert len(list(directory.glob("*.parquet"))) == 3, "one generation: root and two repeats"
