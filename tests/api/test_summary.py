"""Form summaries over HTTP on the read model: choice counts with labels and percentages
(single and multiple choice), missingness, numeric statistics checked against Python's
statistics module, histograms, date ranges, repeat questions, submissions per day, `$filter`,
and permissions."""

from __future__ import annotations

import statistics

import httpx
from tests.aggregation_forms import Household, catch_up, create_project, publish_household, submit, subscribe
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container

SIZES = [3, 5, 5, 8, 12]


async def setup(client: httpx.AsyncClient, container: Container, admin: Person) -> int:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    regions = ["north", "north", "south", "north", "elsewhere"]
    assets = ["radio tv", "tv", "", "radio car tv", "car"]
    for n, size in enumerate(SIZES):
        await submit(
            client,
            admin.auth,
            pid,
            Household(
                f"uuid:s{n}",
                size=str(size),
                region=regions[n],
                assets=assets[n],
                note="" if n == 1 else "ok",
                visit_date=f"2024-03-0{n + 1}",
                members=[("A", str(10 * (n + 1)), [])],
            ),
        )
    await catch_up(container)
    return pid


def question(summary: dict[str, object], path: str) -> dict[str, object]:
    questions = summary["questions"]
    assert isinstance(questions, list)
    return next(q for q in questions if q["path"] == path)


async def test_summary_of_every_question_type(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup(client, container, admin)
    response = await client.get(f"/v1/projects/{pid}/forms/household/summary", headers=admin.auth)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["submissions"] == 5
    assert sum(d["count"] for d in summary["submissionsPerDay"]) == 5

    region = question(summary, "/region")
    assert region["label"] == "Region" and region["answered"] == 5
    assert region["choices"] == [
        {"value": "north", "label": "North", "count": 3, "percent": 60.0},
        {"value": "south", "label": "South", "count": 1, "percent": 20.0},
    ]
    assert region["otherValues"] == [{"value": "elsewhere", "count": 1, "percent": 20.0}]

    assets = question(summary, "/assets")
    assert assets["type"] == "select_multiple"
    assert (assets["answered"], assets["missing"]) == (4, 1)
    assert {c["value"]: c["count"] for c in assets["choices"]} == {"radio": 2, "tv": 3, "car": 2}
    assert {c["value"]: c["percent"] for c in assets["choices"]}["tv"] == 75.0

    note = question(summary, "/grp/note-text")
    assert (note["answered"], note["missing"], note["missingPercent"]) == (4, 1, 20.0)

    size = question(summary, "/size")["numeric"]
    assert size["count"] == 5
    assert size["mean"] == statistics.mean(SIZES) and size["median"] == statistics.median(SIZES)
    assert abs(size["sd"] - statistics.stdev(SIZES)) < 1e-9
    assert (size["min"], size["max"]) == (3, 12)
    assert size["quantiles"]["p25"] == 5 and size["quantiles"]["p75"] == 8
    assert len(size["histogram"]) == 10 and sum(b["count"] for b in size["histogram"]) == 5
    assert size["histogram"][0] == {"from": 3.0, "to": 3.9, "count": 1}
    assert size["histogram"][-1]["count"] == 1, "the maximum falls in the last bin"

    visit = question(summary, "/visit_date")
    assert visit["range"] == {"min": "2024-03-01", "max": "2024-03-05"}

    ages = question(summary, "/hh/member/mage")
    assert ages["repeat"] == "/hh/member" and ages["total"] == 5
    assert ages["numeric"]["mean"] == 30.0


async def test_summary_honours_the_filter_and_permissions(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid = await setup(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household/summary"
    north = (await client.get(url, params={"$filter": "region eq 'north'"}, headers=admin.auth)).json()
    assert north["submissions"] == 3
    assert question(north, "/size")["numeric"]["mean"] == statistics.mean([3, 5, 8])
    assert question(north, "/hh/member/mage")["total"] == 3
    bad = await client.get(url, params={"$filter": "size eq"}, headers=admin.auth)
    assert (bad.status_code, bad.json()["code"]) == (400, 400.18)
    stranger = await make_user()
    assert (await client.get(url, headers=stranger.auth)).status_code == 403
    assert (await client.get(url)).status_code == 401
    missing = await client.get(f"/v1/projects/{pid}/forms/nope/summary", headers=admin.auth)
    assert missing.status_code == 404
