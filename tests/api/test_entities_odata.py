"""The OData feed of an entity list on real PostgreSQL: service document, $metadata, paging
with nextLink/$skiptoken, $count, $filter, $select, $orderby, and hostile query options."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from lxml import etree
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture
async def feed(client: httpx.AsyncClient, admin: Person, container: Container) -> str:
    project = (await container.forms.projects.create(SYSTEM, "Feed", None)).id
    base = f"/v1/projects/{project}/datasets"
    made = await client.post(
        base, json={"name": "trees", "properties": ["species", "height-m"]}, headers=admin.auth
    )
    assert made.status_code == 200
    rows = [
        {"label": f"Tree {i:02}", "data": {"species": ("oak", "ash", "elm")[i % 3], "height-m": str(i)}}
        for i in range(30)
    ]
    rows.append({"label": "Odd one", "data": {"species": "fir", "height-m": "tall"}})
    bulk = await client.post(
        f"{base}/trees/entities", json={"entities": rows, "source": {"name": "x"}}, headers=admin.auth
    )
    assert bulk.status_code == 200
    return f"{base}/trees.svc"


async def get(client: httpx.AsyncClient, admin: Person, url: str, **params: Any) -> httpx.Response:
    return await client.get(url, params=params, headers=admin.auth)


async def test_service_document_and_metadata(client: httpx.AsyncClient, admin: Person, feed: str) -> None:
    document = await get(client, admin, feed)
    assert document.headers["OData-Version"] == "4.0"
    assert document.json()["value"] == [{"name": "Entities", "kind": "EntitySet", "url": "Entities"}]
    metadata = etree.fromstring((await get(client, admin, f"{feed}/$metadata")).content)
    entity_type = metadata.find(f".//{EDM}EntityType")
    assert entity_type is not None
    assert [p.get("Name") for p in entity_type.findall(f"{EDM}Property")] == [
        "__id",
        "label",
        "__system",
        "species",
        "height_m",
    ]


async def test_pages_follow_next_links_to_every_entity_once(
    client: httpx.AsyncClient, admin: Person, feed: str
) -> None:
    seen: list[str] = []
    page = (await get(client, admin, f"{feed}/Entities", **{"$top": "7", "$count": "true"})).json()
    assert page["@odata.count"] == 31
    while True:
        seen += [row["__id"] for row in page["value"]]
        if "@odata.nextLink" not in page:
            break
        link = urlsplit(page["@odata.nextLink"])
        params = {k: v[0] for k, v in parse_qs(link.query).items()}
        page = (await get(client, admin, link.path, **params)).json()
    assert len(seen) == len(set(seen)) == 31
    first = (await get(client, admin, f"{feed}/Entities", **{"$top": "1"})).json()["value"][0]
    assert first["label"] == "Odd one"  # newest first
    assert first["__system"]["version"] == 1 and first["height_m"] == "tall"
    me = (await client.get("/v1/users/current", headers=admin.auth)).json()
    assert first["__system"]["creatorId"] == str(me["id"])
    assert first["__system"]["creatorName"] == me["displayName"]


async def test_filter_select_and_orderby(client: httpx.AsyncClient, admin: Person, feed: str) -> None:
    tall = (await get(client, admin, f"{feed}/Entities", **{"$filter": "height_m ge 25"})).json()["value"]
    assert sorted(r["label"] for r in tall) == [f"Tree {i}" for i in range(25, 30)]  # "tall" is not a number
    oaks = await get(
        client,
        admin,
        f"{feed}/Entities",
        **{
            "$filter": "species eq 'oak' and __system/version eq 1",
            "$select": "__id,label",
            "$count": "true",
        },
    )
    assert oaks.json()["@odata.count"] == 10 and set(oaks.json()["value"][0]) == {"__id", "label"}
    ordered = (
        await get(client, admin, f"{feed}/Entities", **{"$orderby": "label asc", "$top": "2", "$skip": "1"})
    ).json()
    assert [r["label"] for r in ordered["value"]] == ["Tree 00", "Tree 01"]
    assert "$skiptoken" in parse_qs(urlsplit(ordered["@odata.nextLink"]).query)
    recent = {"$filter": "__system/createdAt gt '2000-01-01' and __system/createdAt lt 2100-01-01T00:00:00Z"}
    assert len((await get(client, admin, f"{feed}/Entities", **recent)).json()["value"]) == 31
    text = (await get(client, admin, f"{feed}/Entities", **{"$filter": "contains(label, 'dd')"})).json()
    assert [r["label"] for r in text["value"]] == ["Odd one"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$filter": "label eq 'x'; DROP TABLE entities.entities; --'"}, 400.18),
        ({"$filter": "label eq"}, 400.18),
        ({"$filter": "nosuch eq 'x'"}, 501.5),
        ({"$filter": "__system/secret eq 1"}, 501.5),
        ({"$filter": "__system/createdAt gt 'not a date'"}, 400.18),
        ({"$filter": "__system/createdAt gt 5"}, 400.18),
        ({"$filter": "x" * 5000}, 400.18),
        ({"$select": "label,nosuch"}, 400.23),
        ({"$orderby": "label sideways"}, 400.18),
        ({"$orderby": "nosuch"}, 501.5),
        ({"$skiptoken": "bm90IGpzb24"}, 400.35),
        ({"$top": "-1"}, 400.11),
        ({"$count": "maybe"}, 400.11),
    ],
)
async def test_hostile_or_bad_options_are_refused(
    client: httpx.AsyncClient,
    admin: Person,
    feed: str,
    container: Container,
    params: dict[str, str],
    code: float,
) -> None:
    response = await get(client, admin, f"{feed}/Entities", **params)
    assert response.status_code == int(code) and response.json()["code"] == code, response.text
    still = (await get(client, admin, f"{feed}/Entities", **{"$count": "true", "$top": "0"})).json()
    assert still["@odata.count"] == 31
