"""pyODK's `submissions.get_table` against the real server over real HTTP: the root and repeat
tables with $filter, $top, $skip, $count, $expand, $select and $wkt, and following
@odata.nextLink to the end returns every row exactly once. The server's own in-process event
worker keeps the read model current."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyodk.client import Client
from tests.aggregation_forms import Household, household_form
from tests.compat.test_pyodk import Central, central, write_config

__all__ = ["central"]  # the module-scoped live server fixture, shared with test_pyodk.py

COUNT = 12


@pytest.fixture(scope="module")
def odk(central: Central, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    project_id = central.create_project("pyODK OData")
    folder = tmp_path_factory.mktemp("pyodk-odata")
    config = write_config(folder / "pyodk_config.toml", central, project_id=project_id)
    definition = folder / "household.xml"
    definition.write_bytes(household_form())
    with Client(config_path=config, cache_path=folder / "pyodk_cache.toml") as client:
        client.forms.create(definition=definition, form_id="household")
        for n in range(COUNT):
            members = [(f"M{n}a", str(20 + n), ["2024-01-0" + str(1 + n % 9)]), (f"M{n}b", "5", [])]
            household = Household(
                f"uuid:p{n:02d}",
                name=f"House {n}",
                size=str(n),
                region="north" if n < 4 else "south",
                members=members,
            )
            client.submissions.create(xml=household.xml().decode(), form_id="household")
        wait_for_rows(client, COUNT)
        yield client


def wait_for_rows(client: Client, expected: int, timeout: float = 30.0) -> None:
    """The read model is eventually consistent: wait until the worker has applied the events."""
    deadline = time.monotonic() + timeout
    while True:
        table = client.submissions.get_table(form_id="household", count=True, top=0)
        if table["@odata.count"] >= expected:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the read model has {table['@odata.count']} of {expected} rows after {timeout}s")
        time.sleep(0.1)


def test_get_table_root_with_count_top_skip_and_filter(odk: Client) -> None:
    table = odk.submissions.get_table(form_id="household", count=True)
    assert table["@odata.count"] == COUNT
    assert len(table["value"]) == COUNT
    assert table["value"][0]["__id"] == f"uuid:p{COUNT - 1:02d}", "newest first, as Central"

    page = odk.submissions.get_table(form_id="household", top=5, skip=2, count=True)
    assert [r["__id"] for r in page["value"]] == [f"uuid:p{n:02d}" for n in range(COUNT - 3, COUNT - 8, -1)]
    assert page["@odata.count"] == COUNT and "@odata.nextLink" in page

    filtered = odk.submissions.get_table(
        form_id="household", filter="region eq 'north' and size ge 2", count=True
    )
    assert sorted(r["__id"] for r in filtered["value"]) == ["uuid:p02", "uuid:p03"]
    by_metadata = odk.submissions.get_table(
        form_id="household", filter="__system/reviewState eq null and year(__system/submissionDate) ge 2024"
    )
    assert len(by_metadata["value"]) == COUNT


def test_get_table_repeats_expand_select_and_wkt(odk: Client) -> None:
    members = odk.submissions.get_table(
        form_id="household", table_name="Submissions.hh.member", filter="mage gt 25", count=True
    )
    assert members["@odata.count"] == COUNT - 6
    assert all(m["mage"] > 25 for m in members["value"])
    assert {"__id", "__Submissions-id", "mname"} <= set(members["value"][0])

    expanded = odk.submissions.get_table(form_id="household", expand="*", top=1)
    assert [m["mname"] for m in expanded["value"][0]["hh"]["member"]] == [f"M{COUNT - 1}a", f"M{COUNT - 1}b"]

    selected = odk.submissions.get_table(form_id="household", select="__id,hh_name,grp/consent", top=2)
    assert selected["value"][0] == {
        "__id": f"uuid:p{COUNT - 1:02d}",
        "hh_name": f"House {COUNT - 1}",
        "grp": {"consent": "yes"},
    }

    wkt = odk.submissions.get_table(form_id="household", wkt=True, top=1)
    assert wkt["value"][0]["location"].startswith("POINT (36.8219 -1.2921")


def test_following_next_links_returns_every_row_exactly_once(odk: Client, central: Central) -> None:
    for table_name, total in (("Submissions", COUNT), ("Submissions.hh.member", 2 * COUNT)):
        seen: list[str] = []
        page: dict[str, Any] = odk.submissions.get_table(form_id="household", table_name=table_name, top=5)
        while True:
            seen += [r["__id"] for r in page["value"]]
            link = page.get("@odata.nextLink")
            if not link:
                break
            response = odk.session.get(link)
            assert response.status_code == 200, response.text
            page = response.json()
        assert len(seen) == total and len(set(seen)) == total, table_name
