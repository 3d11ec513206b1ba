"""OData feeds over HTTP through the real app, on the read model kept by the real event worker:
ODK Central's document shapes, paging that returns every row exactly once, filters on
metadata and on any field (hostile ones refused with a code, nothing run), $select, $expand,
navigation paths, permissions and unsupported options."""

from __future__ import annotations

import hashlib
import warnings
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from lxml import etree
from sqlalchemy import text
from sqlalchemy.exc import SADeprecationWarning
from tests.aggregation_forms import Household, catch_up, create_project, publish_household, submit, subscribe
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


async def households(client: httpx.AsyncClient, container: Container, admin: Person, count: int = 3) -> int:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    for n in range(count):
        await submit(
            client,
            admin.auth,
            pid,
            Household(
                f"uuid:h{n}",
                name=f"House {n}",
                region="north" if n % 2 == 0 else "south",
                size=str(n + 1),
                members=[("Bo", "30", ["2024-01-01", "2024-02-01"]), ("Cy", "7", [])] if n == 0 else [],
            ),
        )
    await catch_up(container)
    return pid


def svc(pid: int) -> str:
    return f"/v1/projects/{pid}/forms/household.svc"


async def get(client: httpx.AsyncClient, admin: Person, url: str, **params: Any) -> httpx.Response:
    return await client.get(url, params=params, headers=admin.auth)


async def test_service_document_and_metadata_describe_every_table(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=1)
    service = await get(client, admin, svc(pid))
    assert service.status_code == 200, service.text
    assert service.headers["odata-version"] == "4.0"
    assert service.json() == {
        "@odata.context": f"http://test{svc(pid)}/$metadata",
        "value": [
            {"name": "Submissions", "kind": "EntitySet", "url": "Submissions"},
            {"name": "Submissions.hh.member", "kind": "EntitySet", "url": "Submissions.hh.member"},
            {
                "name": "Submissions.hh.member.visit",
                "kind": "EntitySet",
                "url": "Submissions.hh.member.visit",
            },
        ],
    }

    metadata = await get(client, admin, svc(pid) + "/$metadata")
    assert metadata.status_code == 200 and metadata.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(metadata.content)
    entity_types = {e.get("Name"): e for e in root.iter(f"{EDM}EntityType")}
    assert set(entity_types) == {"Submissions", "Submissions.hh.member", "Submissions.hh.member.visit"}
    complex_types = {e.get("Name") for e in root.iter(f"{EDM}ComplexType")}
    assert {"metadata", "grp", "hh", "meta"} <= complex_types

    def properties(name: str) -> dict[str, str]:
        return {
            p.get("Name", ""): p.get("Type", "")
            for p in entity_types[name]
            if p.tag in (f"{EDM}Property", f"{EDM}NavigationProperty")
        }

    root_props = properties("Submissions")
    assert root_props["size"] == "Edm.Int64" and root_props["income"] == "Edm.Decimal"
    assert root_props["location"] == "Edm.GeographyPoint" and root_props["visit_date"] == "Edm.Date"
    assert root_props["grp"] == "org.opendatakit.user.household.grp"
    assert root_props["__system"] == "org.opendatakit.submission.metadata"
    assert properties("Submissions.hh.member")["__Submissions-id"] == "Edm.String"
    assert properties("Submissions.hh.member")["visit"] == (
        "Collection(org.opendatakit.user.household.Submissions.hh.member.visit)"
    )
    assert properties("Submissions.hh.member.visit")["__Submissions-hh-member-id"] == "Edm.String"

    # The entity types match the rows served: every property of each served row is declared.
    for table, entity in (("Submissions", "Submissions"), ("Submissions.hh.member", "Submissions.hh.member")):
        served = (await get(client, admin, f"{svc(pid)}/{table}")).json()["value"]
        assert served
        for row in served:
            keys = {k.split("@")[0] for k in row}
            assert keys <= set(properties(entity)), keys - set(properties(entity))


async def test_rows_have_centrals_shape(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=1)
    body = (await get(client, admin, f"{svc(pid)}/Submissions")).json()
    assert body["@odata.context"] == f"http://test{svc(pid)}/$metadata#Submissions"
    [row] = body["value"]
    assert row["__id"] == "uuid:h0"
    system = row["__system"]
    assert system["submitterId"] == str(admin.id) and system["submitterName"] == "admin@example.org"
    assert (system["edits"], system["reviewState"], system["formVersion"], system["status"]) == (
        0,
        None,
        "1",
        None,
    )
    assert system["submissionDate"].endswith("Z") and system["deletedAt"] is None
    assert (row["hh_name"], row["size"], row["income"], row["region"]) == ("House 0", 1, 1250.5, "north")
    assert row["location"] == {
        "type": "Point",
        "coordinates": [36.8219, -1.2921, 1795],
        "properties": {"accuracy": 5},
    }
    assert row["started"] == "2024-03-01T09:30:00.000+02:00"
    assert row["grp"] == {"note_text": "fine", "consent": "yes"}
    assert row["meta"] == {"instanceID": "uuid:h0", "deprecatedID": None}
    assert row["hh"] == {"member@odata.navigationLink": "Submissions('uuid%3Ah0')/hh/member"}

    wkt = (await get(client, admin, f"{svc(pid)}/Submissions", **{"$wkt": "True"})).json()["value"][0]
    assert wkt["location"] == "POINT (36.8219 -1.2921 1795)"

    members = (await get(client, admin, f"{svc(pid)}/Submissions.hh.member")).json()
    assert members["@odata.context"].endswith("#Submissions.hh.member")
    first, second = members["value"]
    member_id = hashlib.sha1(b"Submissions#uuid:h0%%hh#%%member#0").hexdigest()
    assert first == {
        "__id": member_id,
        "mname": "Bo",
        "mage": 30,
        "visit@odata.navigationLink": f"Submissions('uuid%3Ah0')/hh/member('{member_id}')/visit",
        "__Submissions-id": "uuid:h0",
    }
    assert second["mname"] == "Cy" and "visit@odata.navigationLink" not in second
    visits = (await get(client, admin, f"{svc(pid)}/Submissions.hh.member.visit")).json()["value"]
    assert [v["vdate"] for v in visits] == ["2024-01-01", "2024-02-01"]
    assert {v["__Submissions-hh-member-id"] for v in visits} == {member_id}

    # Navigation paths as the links give them.
    under = await get(client, admin, f"{svc(pid)}/Submissions('uuid%3Ah0')/hh/member('{member_id}')/visit")
    assert [v["vdate"] for v in under.json()["value"]] == ["2024-01-01", "2024-02-01"]
    one = (await get(client, admin, f"{svc(pid)}/Submissions('uuid:h0')")).json()
    assert [r["__id"] for r in one["value"]] == ["uuid:h0"]
    nested = (await get(client, admin, f"{svc(pid)}/Submissions('uuid:h0')/hh/member")).json()
    assert [m["mname"] for m in nested["value"]] == ["Bo", "Cy"]
    assert (await get(client, admin, f"{svc(pid)}/Submissions('uuid:none')")).status_code == 404
    assert (await get(client, admin, f"{svc(pid)}/Submissions.nope")).status_code == 404


async def test_expand_inlines_every_repeat(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=1)
    row = (await get(client, admin, f"{svc(pid)}/Submissions", **{"$expand": "*"})).json()["value"][0]
    members = row["hh"]["member"]
    assert [m["mname"] for m in members] == ["Bo", "Cy"]
    assert [v["vdate"] for v in members[0]["visit"]] == ["2024-01-01", "2024-02-01"]
    assert "visit" not in members[1]
    bad = await get(client, admin, f"{svc(pid)}/Submissions", **{"$expand": "hh/member"})
    assert (bad.status_code, bad.json()["code"]) == (501, 501.6)
    both = await get(client, admin, f"{svc(pid)}/Submissions", **{"$expand": "*", "$select": "__id"})
    assert both.json()["code"] == 501.11


async def test_select_keeps_only_the_named_properties(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=1)
    selected = await get(
        client,
        admin,
        f"{svc(pid)}/Submissions",
        **{"$select": "__id, size, grp/consent, __system/reviewState"},
    )
    assert selected.json()["value"] == [
        {"__id": "uuid:h0", "__system": {"reviewState": None}, "size": 1, "grp": {"consent": "yes"}}
    ]
    group = (await get(client, admin, f"{svc(pid)}/Submissions", **{"$select": "grp"})).json()["value"][0]
    assert group == {"__id": "uuid:h0", "grp": {"note_text": "fine", "consent": "yes"}}
    member = (await get(client, admin, f"{svc(pid)}/Submissions.hh.member", **{"$select": "mname"})).json()[
        "value"
    ][0]
    assert member == {"__id": member["__id"], "mname": "Bo"}
    unknown = await get(client, admin, f"{svc(pid)}/Submissions", **{"$select": "nope"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, 400.23)
    inside = await get(client, admin, f"{svc(pid)}/Submissions", **{"$select": "hh/member/mname"})
    assert (inside.status_code, inside.json()["code"]) == (400, 400.24)


async def test_paging_follows_next_links_and_returns_every_row_once(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=7)
    first = (await get(client, admin, f"{svc(pid)}/Submissions", **{"$top": "3", "$count": "true"})).json()
    assert first["@odata.count"] == 7
    assert [r["__id"] for r in first["value"]] == ["uuid:h6", "uuid:h5", "uuid:h4"], "newest first"
    seen = [r["__id"] for r in first["value"]]
    next_link = first["@odata.nextLink"]
    assert "%24skiptoken=" in next_link and "%24top=3" in next_link
    # A submission arriving while paging sorts before the cursor: not in later pages.
    await submit(client, admin.auth, pid, Household("uuid:late"))
    await catch_up(container)
    while next_link:
        parts = urlsplit(next_link)
        page = (await client.get(f"{parts.path}?{parts.query}", headers=admin.auth)).json()
        assert page["@odata.count"] == 8
        seen += [r["__id"] for r in page["value"]]
        next_link = page.get("@odata.nextLink")
    assert seen == [f"uuid:h{n}" for n in range(6, -1, -1)]

    skipped = (await get(client, admin, f"{svc(pid)}/Submissions", **{"$skip": "6", "$top": "5"})).json()
    assert [r["__id"] for r in skipped["value"]] == ["uuid:h1", "uuid:h0"]
    assert "@odata.nextLink" not in skipped
    everything = (await get(client, admin, f"{svc(pid)}/Submissions")).json()
    assert len(everything["value"]) == 8 and "@odata.nextLink" not in everything

    ordered = (
        await get(client, admin, f"{svc(pid)}/Submissions", **{"$orderby": "size asc", "$top": "2"})
    ).json()
    assert [r["size"] for r in ordered["value"]] == [1, 2]
    assert "%24skip=2" in ordered["@odata.nextLink"]

    bad = await get(client, admin, f"{svc(pid)}/Submissions", **{"$skiptoken": "01nonsense"})
    assert (bad.status_code, bad.json()["code"]) == (400, 400.8)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("__system/submitterId eq {admin}", {"uuid:h0", "uuid:h1", "uuid:h2", "uuid:h3"}),
        ("__system/reviewState eq null", {"uuid:h0", "uuid:h1", "uuid:h2", "uuid:h3"}),
        (
            "year(__system/submissionDate) ge 2020 and __system/edits eq 0",
            {"uuid:h0", "uuid:h1", "uuid:h2", "uuid:h3"},
        ),
        ("size gt 2", {"uuid:h2", "uuid:h3"}),
        ("size le 2 and region eq 'north'", {"uuid:h0"}),
        ("region eq 'south' or hh_name eq 'House 0'", {"uuid:h0", "uuid:h1", "uuid:h3"}),
        ("not (region eq 'south')", {"uuid:h0", "uuid:h2"}),
        ("grp/consent eq 'yes' and contains(hh_name, '3')", {"uuid:h3"}),
        ("startswith(hh_name, 'House') and size in (1, 4)", {"uuid:h0", "uuid:h3"}),
        (
            "visit_date ge 2024-03-01 and visit_date lt 2024-03-02",
            {"uuid:h0", "uuid:h1", "uuid:h2", "uuid:h3"},
        ),
        ("started gt 2024-03-01T07:00:00Z", {"uuid:h0", "uuid:h1", "uuid:h2", "uuid:h3"}),
        ("size div 0 eq 1", set()),
        ("tolower(region) eq 'NORTH'", set()),
        ("__id eq 'uuid:h2'", {"uuid:h2"}),
        ("income eq 1250.5 and size mod 2 eq 0", {"uuid:h1", "uuid:h3"}),
    ],
)
async def test_filters_on_metadata_and_fields(
    client: httpx.AsyncClient, container: Container, admin: Person, expression: str, expected: set[str]
) -> None:
    pid = await households(client, container, admin, count=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = await get(
            client,
            admin,
            f"{svc(pid)}/Submissions",
            **{"$filter": expression.format(admin=admin.id), "$count": "true"},
        )
    # The compiled SQL is sound: SQLAlchemy warns of nothing (`not` over a JSONB-typed `@>` did).
    assert not [w for w in caught if issubclass(w.category, SADeprecationWarning)]
    assert response.status_code == 200, response.text
    assert {r["__id"] for r in response.json()["value"]} == expected
    assert response.json()["@odata.count"] == len(expected)


async def test_filters_on_repeat_tables(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=1)
    older = await get(client, admin, f"{svc(pid)}/Submissions.hh.member", **{"$filter": "mage gt 10"})
    assert [m["mname"] for m in older.json()["value"]] == ["Bo"]
    by_root = await get(
        client,
        admin,
        f"{svc(pid)}/Submissions.hh.member",
        **{"$filter": "$root/Submissions/__system/submissionDate gt 2000-01-01T00:00:00Z", "$count": "true"},
    )
    assert by_root.json()["@odata.count"] == 2
    system = await get(
        client, admin, f"{svc(pid)}/Submissions.hh.member", **{"$filter": "__system/edits eq 0"}
    )
    assert system.json()["code"] == 501.5


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("size eq 1; DROP TABLE aggregation.rows; --", 400.18),
        ("hh_name eq 'x'' OR 1=1 --'", None),
        ("hh_name eq 'a') OR (1 eq 1", 400.18),
        ("nosuchfield eq 1", 400.23),
        ('"size" eq 1', 400.18),
        ("geo.distance(location, geography'POINT(0 0)') lt 1", 501.4),
        ("matchesPattern(hh_name, '(a+)+$')", 501.4),
        ("hh/member/mname eq 'Bo'", 400.23),
        ("grp eq 'x'", 501.5),
        ("__system/submitterName eq 'x'", 501.5),
        ("visit_date eq 2024-02-31", 400.22),
        ("size eq 1e999999", 400.22),
        ("size", 400.18),
        ("not " * 100 + "size eq 1", 400.18),
        ("size eq 1 and " * 100 + "size eq 1", 400.18),
        ("hh_name eq '" + "x" * 5000 + "'", 400.18),
        ("size eq 'abc'", 400.18),
        ("visit_date eq 'not a date'", 400.18),
        ("", None),
        ("(" * 50 + "hh_name eq 'nobody'" + ")" * 50, None),
    ],
)
async def test_hostile_filters_are_refused_and_run_nothing(
    client: httpx.AsyncClient, container: Container, admin: Person, expression: str, code: float | None
) -> None:
    pid = await households(client, container, admin, count=2)
    response = await get(client, admin, f"{svc(pid)}/Submissions", **{"$filter": expression})
    if code is None:
        assert response.status_code == 200, response.text
        # A quote inside a literal stays inside it: no row has that name.
        assert response.json()["value"] == [] or expression == ""
    else:
        assert response.status_code == int(code), response.text
        assert response.json()["code"] == code
    async with container.db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM aggregation.rows"))).scalar_one() == 2


async def test_unsupported_options_answer_501(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=1)
    for option in ("$search", "$apply", "$compute", "$levels"):
        response = await get(client, admin, f"{svc(pid)}/Submissions", **{option: "x"})
        assert (response.status_code, response.json()["code"]) == (501, 501.1), option
        assert response.json()["details"]["feature"] == option
    xml = await get(client, admin, f"{svc(pid)}/Submissions", **{"$format": "xml"})
    assert xml.json()["code"] == 501.1
    assert (await get(client, admin, f"{svc(pid)}/Submissions", **{"$top": "-1"})).json()["code"] == 400.11
    assert (await get(client, admin, f"{svc(pid)}/Submissions", **{"$count": "maybe"})).json()[
        "code"
    ] == 400.11


async def test_permissions(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid = await households(client, container, admin, count=1)
    other_project = await create_project(client, admin, "Other")
    manager = await make_user()
    collector = await make_user()
    for person, role in ((manager, "manager"), (collector, "formfill")):
        roles = (await client.get("/v1/roles", headers=admin.auth)).json()
        role_id = next(r["id"] for r in roles if r["system"] == role)
        assigned = await client.post(
            f"/v1/projects/{other_project if person is manager else pid}/assignments/{role_id}/{person.id}",
            headers=admin.auth,
        )
        assert assigned.status_code == 200, assigned.text
    for url in (
        svc(pid),
        svc(pid) + "/$metadata",
        svc(pid) + "/Submissions",
        svc(pid) + "/Submissions.hh.member",
    ):
        assert (await client.get(url, headers=manager.auth)).status_code == 403, url
        assert (await client.get(url, headers=collector.auth)).status_code == 403, url
        assert (await client.get(url)).status_code == 401, url
    assert (
        await client.get(f"/v1/projects/{pid}/forms/nope.svc/Submissions", headers=admin.auth)
    ).status_code == 404


async def test_basic_auth_over_https_reads_the_feed(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=1)
    basic = httpx.BasicAuth("admin@example.org", "correct horse battery staple")
    plain = await client.get(f"{svc(pid)}/Submissions", auth=basic)
    assert plain.status_code == 401 and plain.json()["code"] == 401.3, "Basic needs HTTPS"
    secure = await client.get(f"https://test{svc(pid)}/Submissions", auth=basic)
    assert secure.status_code == 200, secure.text
    assert [r["__id"] for r in secure.json()["value"]] == ["uuid:h0"]


async def test_draft_feed(client: httpx.AsyncClient, container: Container, admin: Person) -> None:
    pid = await households(client, container, admin, count=1)
    base = f"/v1/projects/{pid}/forms/household"
    assert (await client.post(base + "/draft", headers=admin.auth)).status_code == 200
    await submit(client, admin.auth, pid, Household("uuid:test-run"), draft=True)
    await catch_up(container)
    draft = (await get(client, admin, base + "/draft.svc/Submissions")).json()
    assert [r["__id"] for r in draft["value"]] == ["uuid:test-run"]
    assert draft["@odata.context"] == f"http://test{base}/draft.svc/$metadata#Submissions"
    published = (await get(client, admin, base + ".svc/Submissions")).json()
    assert [r["__id"] for r in published["value"]] == ["uuid:h0"]


async def test_deleted_submissions_leave_the_feed(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await households(client, container, admin, count=2)
    base = f"/v1/projects/{pid}/forms/household/submissions/uuid:h0"
    assert (await client.delete(base, headers=admin.auth)).status_code == 200
    await catch_up(container)
    rows = (await get(client, admin, f"{svc(pid)}/Submissions", **{"$count": "true"})).json()
    assert [r["__id"] for r in rows["value"]] == ["uuid:h1"] and rows["@odata.count"] == 1
    members = (await get(client, admin, f"{svc(pid)}/Submissions.hh.member")).json()["value"]
    assert members == [], "the deleted submission's repeat rows leave too"


async def test_links_to_nested_repeats_follow_each_parent(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    await subscribe(container)
    pid = await create_project(client, admin)
    await publish_household(client, admin, pid)
    await submit(
        client, admin.auth, pid, Household("uuid:n1", members=[("A", "1", []), ("B", "2", ["2024-01-01"])])
    )
    await catch_up(container)
    members = (await get(client, admin, f"{svc(pid)}/Submissions.hh.member")).json()["value"]
    assert [("visit@odata.navigationLink" in m) for m in members] == [False, True]
    link = members[1]["visit@odata.navigationLink"]
    visits = (await get(client, admin, f"{svc(pid)}/{link}")).json()["value"]
    assert [v["vdate"] for v in visits] == ["2024-01-01"]
