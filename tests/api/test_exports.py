"""Exports over HTTP on real PostgreSQL, with the read model kept by the real event worker:
Central's CSV layout (groups, a nested repeat, a geopoint, select_multiple, metadata), the zip
with media, every other format read back with an independent reader, filters, permissions,
bad options and hostile input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import zipfile

import httpx
import openpyxl
import pyarrow.parquet as pq
import pyreadstat
import pytest
from tests.conftest import MakeUser, Person
from tests.export_forms import XFORM, submission_xml

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.aggregation.exports import ExportFormat, parse_options, render

XML = {"Content-Type": "application/xml"}
PHOTO = b"\xff\xd8\xff" + b"jpeg" * 5000

FIRST = (
    "<name>Ana, &quot;the&quot; first</name><age>30</age><weight>61.5</weight>"
    "<location>-1.5 36.25 1700 5</location><colours>red blue</colours><tenure>own</tenure>"
    "<photo>p.jpg</photo><grp><inner>x</inner><sub><deep/></sub></grp>"
    "<hh><member><mname>Kid</mname><mage>4</mage><pets><pet>cat</pet></pets><pets><pet>dog</pet></pets></member>"
    "<member><mname>Gran</mname><mage/></member></hh>"
)
SECOND = "<name>Bo</name><age>41</age><tenure>rent</tenure><colours>green</colours>"

ROOT_HEADER = (
    "SubmissionDate,name,age,weight,location-Latitude,location-Longitude,location-Altitude,"
    "location-Accuracy,colours,tenure,photo,grp-inner,grp-sub-deep,meta-instanceID,KEY,SubmitterID,"
    "SubmitterName,AttachmentsPresent,AttachmentsExpected,Status,ReviewState,DeviceID,Edits,FormVersion"
)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def _catch_up(container: Container) -> None:
    await container.worker.drain()


async def setup_form(client: httpx.AsyncClient, container: Container, admin: Person) -> int:
    await container.consumers.sync(container.db)
    created = await client.post("/v1/projects", json={"name": "Exports"}, headers=admin.auth)
    pid = int(created.json()["id"])
    published = await client.post(
        f"/v1/projects/{pid}/forms", content=XFORM, params={"publish": "true"}, headers={**admin.auth, **XML}
    )
    assert published.status_code == 200, published.text
    base = f"/v1/projects/{pid}/forms/household_survey/submissions"
    for instance_id, body in (("uuid:one", FIRST), ("uuid:two", SECOND)):
        sent = await client.post(
            base,
            content=submission_xml(instance_id, body),
            params={"deviceID": "dev1"},
            headers={**admin.auth, **XML},
        )
        assert sent.status_code == 200, sent.text
    attached = await client.post(
        f"{base}/uuid:one/attachments/p.jpg",
        content=PHOTO,
        headers={**admin.auth, "Content-Type": "image/jpeg"},
    )
    assert attached.status_code == 200, attached.text
    reviewed = await client.patch(f"{base}/uuid:two", json={"reviewState": "approved"}, headers=admin.auth)
    assert reviewed.status_code == 200, reviewed.text
    await _catch_up(container)
    return pid


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_csv_zip_has_centrals_layout_repeats_and_media(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    response = await client.get(
        f"/v1/projects/{pid}/forms/household_survey/submissions.csv.zip", headers=admin.auth
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"household_survey.zip\"; filename*=UTF-8''household_survey.zip"
    )
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == [
        "household_survey.csv",
        "household_survey-member.csv",
        "household_survey-pets.csv",
        "media/p.jpg",
    ]
    root = archive.read("household_survey.csv").decode()
    assert root.splitlines()[0] == ROOT_HEADER
    rows = _rows(root)[1:]
    assert all(DATE.match(r[0]) for r in rows)
    # Newest first, as Central exports.
    assert [r[1:] for r in rows] == [
        ["Bo", "41", "", "", "", "", "", "green", "rent", "", "", "", "uuid:two", "uuid:two", str(admin.id),
         "admin@example.org", "0", "0", "", "approved", "dev1", "0", "v1"],
        ['Ana, "the" first', "30", "61.5", "-1.5", "36.25", "1700", "5", "red blue", "own", "p.jpg", "x", "",
         "uuid:one", "uuid:one", str(admin.id), "admin@example.org", "1", "1", "", "", "dev1", "0", "v1"],
    ]  # fmt: skip
    assert archive.read("household_survey-member.csv").decode() == (
        "mname,mage,PARENT_KEY,KEY\n"
        "Kid,4,uuid:one,uuid:one/hh/member[1]\n"
        "Gran,,uuid:one,uuid:one/hh/member[2]\n"
    )
    assert archive.read("household_survey-pets.csv").decode() == (
        "pet,PARENT_KEY,KEY\n"
        "cat,uuid:one/hh/member[1],uuid:one/hh/member[1]/pets[1]\n"
        "dog,uuid:one/hh/member[1],uuid:one/hh/member[1]/pets[2]\n"
    )
    assert archive.read("media/p.jpg") == PHOTO


async def test_options_group_paths_split_selects_and_no_attachments(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv.zip"
    params = {"attachments": "false", "groupPaths": "false", "splitSelectMultiples": "true"}
    response = await client.get(url, params=params, headers=admin.auth)
    assert response.status_code == 200, response.text
    assert 'filename="household_survey.csv.zip"' in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert not [n for n in archive.namelist() if n.startswith("media/")]
    rows = _rows(archive.read("household_survey.csv").decode())
    header = rows[0]
    assert "inner" in header and "deep" in header and "instanceID" in header
    at = header.index("colours")
    assert header[at : at + 4] == ["colours", "colours/blue", "colours/green", "colours/red"]
    assert [r[at + 1 : at + 4] for r in rows[1:]] == [["0", "1", "0"], ["1", "0", "1"]]


async def test_post_takes_options_in_a_json_or_form_body(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv"
    as_json = await client.post(url, json={"groupPaths": False, "$filter": "age gt 35"}, headers=admin.auth)
    assert as_json.status_code == 200, as_json.text
    rows = _rows(as_json.text)
    assert "inner" in rows[0] and [r[1] for r in rows[1:]] == ["Bo"]
    as_form = await client.post(url, data={"groupPaths": "false"}, headers=admin.auth)
    assert as_form.status_code == 200 and "inner" in _rows(as_form.text)[0]
    assert as_form.headers["content-type"].startswith("text/csv")


async def test_filters_on_metadata_and_fields(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv"
    approved = await client.get(
        url, params={"$filter": "__system/reviewState eq 'approved'"}, headers=admin.auth
    )
    assert approved.status_code == 200, approved.text
    assert [r[1] for r in _rows(approved.text)[1:]] == ["Bo"]
    young = await client.get(url, params={"$filter": "age lt 35"}, headers=admin.auth)
    assert [r[1] for r in _rows(young.text)[1:]] == ['Ana, "the" first']
    zipped = await client.get(
        url + ".zip", params={"$filter": "age lt 35", "attachments": "false"}, headers=admin.auth
    )
    member = zipfile.ZipFile(io.BytesIO(zipped.content)).read("household_survey-member.csv").decode()
    assert len(_rows(member)) == 3
    none = await client.get(url + ".zip", params={"$filter": "age gt 99"}, headers=admin.auth)
    archive = zipfile.ZipFile(io.BytesIO(none.content))
    assert archive.read("household_survey.csv").decode().splitlines() == [ROOT_HEADER]
    assert "media/p.jpg" not in archive.namelist()


@pytest.mark.parametrize(
    "bad",
    [
        "age gt",
        "1 eq 1; DROP TABLE aggregation.rows",
        "nosuchfield eq 'x' or 1 eq 1",
    ],
)
async def test_bad_and_hostile_filters_are_400_and_change_nothing(
    client: httpx.AsyncClient, container: Container, admin: Person, bad: str
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv"
    response = await client.get(url, params={"$filter": bad}, headers=admin.auth)
    assert response.status_code in (400, 501), response.text
    assert str(response.json()["code"]).split(".")[0] in ("400", "501")
    after = await client.get(url, headers=admin.auth)
    assert len(_rows(after.text)) == 3


async def test_quotes_in_a_filter_are_data_not_sql(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv"
    response = await client.get(url, params={"$filter": "name eq 'x'') or (''='"}, headers=admin.auth)
    assert response.status_code == 200 and response.text.splitlines() == [ROOT_HEADER]
    quoted = await client.get(url, params={"$filter": "name eq 'Ana, \"the\" first'"}, headers=admin.auth)
    assert [r[1] for r in _rows(quoted.text)[1:]] == ['Ana, "the" first']


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"groupPaths": "maybe"}, 400.11),
        ({"splitSelectMultiples": "2"}, 400.11),
        ({"lang": "klingon"}, 400.8),
        ({"$filter": "x" * 5000}, 400.13),
    ],
)
async def test_bad_options_are_400_with_a_code(
    client: httpx.AsyncClient, container: Container, admin: Person, params: dict[str, str], code: float
) -> None:
    pid = await setup_form(client, container, admin)
    response = await client.get(
        f"/v1/projects/{pid}/forms/household_survey/submissions.csv.zip", params=params, headers=admin.auth
    )
    assert response.status_code == 400 and response.json()["code"] == code, response.text


async def test_geometry_must_be_a_geo_field(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.geojson"
    response = await client.get(url, params={"geometry": "name"}, headers=admin.auth)
    assert response.status_code == 400 and response.json()["code"] == 400.8


async def test_permissions(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv.zip"
    assert (await client.get(url)).status_code == 401
    outsider = await make_user()
    other = await client.post("/v1/projects", json={"name": "Other"}, headers=admin.auth)
    await client.post(
        f"/v1/projects/{other.json()['id']}/assignments/manager/{outsider.id}", headers=admin.auth
    )
    denied = await client.get(url, headers=outsider.auth)
    assert denied.status_code == 403 and denied.json()["code"] == 403.1
    collector = await make_user()
    granted = await client.post(f"/v1/projects/{pid}/assignments/formfill/{collector.id}", headers=admin.auth)
    assert granted.status_code == 200, granted.text
    for fmt in ("csv.zip", "csv", "xlsx", "geojson", "sav", "parquet"):
        response = await client.get(
            f"/v1/projects/{pid}/forms/household_survey/submissions.{fmt}", headers=collector.auth
        )
        assert response.status_code == 403, (fmt, response.text)
    viewer = await make_user()
    await client.post(f"/v1/projects/{pid}/assignments/viewer/{viewer.id}", headers=admin.auth)
    assert (await client.get(url, headers=viewer.auth)).status_code == 200
    missing = await client.get(f"/v1/projects/{pid}/forms/nosuch/submissions.csv", headers=admin.auth)
    assert missing.status_code == 404


async def test_xlsx_parquet_sav_and_geojson_read_back(
    client: httpx.AsyncClient, container: Container, admin: Person, tmp_path: object
) -> None:
    pid = await setup_form(client, container, admin)
    base = f"/v1/projects/{pid}/forms/household_survey/submissions"

    xlsx = await client.get(f"{base}.xlsx", headers=admin.auth)
    assert xlsx.status_code == 200 and int(xlsx.headers["content-length"]) == len(xlsx.content)
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert book.sheetnames == ["household_survey", "member", "pets"]
    sheet = list(book["household_survey"].iter_rows(values_only=True))
    assert sheet[0][1] == "name" and sheet[1][1] == "Bo" and sheet[1][2] == 41 and sheet[2][3] == 61.5
    assert len(list(book["pets"].iter_rows(values_only=True))) == 3

    parquet = await client.get(f"{base}.parquet", headers=admin.auth)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert str(table.schema.field("age").type) == "int64"
    assert table.column("name").to_pylist() == ["Bo", 'Ana, "the" first']

    sav = await client.get(f"{base}.sav", params={"lang": "fr"}, headers=admin.auth)
    assert sav.status_code == 200, sav.text
    path = f"{tmp_path}/x.sav"
    with open(path, "wb") as out:
        out.write(sav.content)
    frame, meta = pyreadstat.read_sav(path, output_format="dict")
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["name"] == "Nom (name)" and labels["tenure"] == "Statut (tenure)"
    assert meta.variable_value_labels["tenure"] == {"own": "Proprietaire", "rent": "Locataire"}
    assert frame["tenure"] == ["rent", "own"]

    geo = await client.get(f"{base}.geojson", headers=admin.auth)
    assert geo.headers["content-type"] == "application/geo+json"
    document = json.loads(geo.content)
    assert [f["id"] for f in document["features"]] == ["uuid:two", "uuid:one"]
    assert document["features"][0]["geometry"] is None
    assert document["features"][1]["geometry"] == {"type": "Point", "coordinates": [36.25, -1.5, 1700.0]}

    labelled = await client.get(f"{base}.csv", params={"labels": "true", "lang": "fr"}, headers=admin.auth)
    rows = _rows(labelled.text)
    assert rows[0][1] == "Nom" and rows[1][9] == "Locataire"


async def test_sav_row_cap_is_422(client: httpx.AsyncClient, container: Container, admin: Person) -> None:
    pid = await setup_form(client, container, admin)
    container.exports.exports._limits = type(container.exports.exports._limits)(sav_max_rows=1)
    response = await client.get(
        f"/v1/projects/{pid}/forms/household_survey/submissions.sav", headers=admin.auth
    )
    assert response.status_code == 422 and response.json()["code"] == 422.2
    assert response.json()["details"]["submissions"] == 2


async def test_draft_exports_are_separate(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/draft/submissions.csv"
    assert (await client.get(url, headers=admin.auth)).status_code == 404
    made = await client.post(f"/v1/projects/{pid}/forms/household_survey/draft", headers=admin.auth)
    assert made.status_code == 200, made.text
    draft_url = f"/v1/projects/{pid}/forms/household_survey/draft/submissions"
    sent = await client.post(
        draft_url, content=submission_xml("uuid:d1", "<name>Test</name>"), headers={**admin.auth, **XML}
    )
    assert sent.status_code == 200, sent.text
    await _catch_up(container)
    response = await client.get(url, headers=admin.auth)
    assert response.status_code == 200, response.text
    assert [r[1] for r in _rows(response.text)[1:]] == ["Test"]


@pytest.mark.parametrize("options", [{}, {"groupPaths": "false", "splitSelectMultiples": "true"}])
async def test_postgresql_csv_equals_the_python_rendering(
    client: httpx.AsyncClient, container: Container, admin: Person, options: dict[str, str]
) -> None:
    """The COPY fast path and the row-by-row renderer write the same bytes for every table."""
    pid = await setup_form(client, container, admin)
    extra = (
        "<name>Tab\tand\r\nnewline, and ,comma</name><weight>0.00001</weight><colours> red  green </colours>"
    )
    sent = await client.post(
        f"/v1/projects/{pid}/forms/household_survey/submissions",
        content=submission_xml("uuid:three", extra),
        headers={**admin.auth, **XML},
    )
    assert sent.status_code == 200, sent.text
    await _catch_up(container)
    exports = container.exports.exports
    prepared = await exports.prepare(
        SYSTEM, pid, "household_survey", False, ExportFormat.CSV_ZIP, parse_options(options)
    )
    for table in prepared.tables:
        fast = b"".join([c async for c in prepared.copy.chunks(table, table.headers)])
        slow = b"".join([c async for c in render.csv_chunks(table, prepared.source)])
        assert fast == slow, table.file_name
        assert len(_rows(fast.decode())) > 1


async def test_deleted_fields_brings_back_fields_of_older_versions(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    v2 = (
        XFORM.replace(b'version="v1"', b'version="v2"')
        .replace(b"<weight/>", b"")
        .replace(b'<bind nodeset="/data/weight" type="decimal"/>', b"")
        .replace(b'<input ref="/data/weight"><label>Weight (kg)</label></input>', b"")
    )
    draft = await client.post(
        f"/v1/projects/{pid}/forms/household_survey/draft", content=v2, headers={**admin.auth, **XML}
    )
    assert draft.status_code == 200, draft.text
    published = await client.post(
        f"/v1/projects/{pid}/forms/household_survey/draft/publish", headers=admin.auth
    )
    assert published.status_code == 200, published.text
    await _catch_up(container)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv"
    current = _rows((await client.get(url, headers=admin.auth)).text)
    assert "weight" not in current[0]
    merged = _rows((await client.get(url, params={"deletedFields": "true"}, headers=admin.auth)).text)
    assert "weight" in merged[0]
    at = merged[0].index("weight")
    assert [r[at] for r in merged[1:]] == ["", "61.5"]


async def test_huge_option_bodies_are_413(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    url = f"/v1/projects/{pid}/forms/household_survey/submissions.csv"
    response = await client.post(url, json={"$filter": "x" * 200_000}, headers=admin.auth)
    assert response.status_code == 413 and response.json()["code"] == 413.1
    wrong = await client.post(
        url, content=b"<xml/>", headers={**admin.auth, "Content-Type": "application/xml"}
    )
    assert wrong.status_code == 415


async def test_database_streams_are_limited_so_slow_downloads_cannot_take_the_pool(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await setup_form(client, container, admin)
    exports = container.exports.exports
    exports._streams = asyncio.Semaphore(1)
    first = await exports.prepare(SYSTEM, pid, "household_survey", False, ExportFormat.CSV, parse_options({}))
    second = await exports.prepare(
        SYSTEM, pid, "household_survey", False, ExportFormat.CSV, parse_options({})
    )
    slow = aiter(exports.stream(first))
    waiting = aiter(exports.stream(second))
    assert (await anext(slow)).startswith(b"SubmissionDate")
    await anext(slow)  # the first download is mid-COPY, holding its connection
    assert (await anext(waiting)).startswith(b"SubmissionDate")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(pending := asyncio.ensure_future(anext(waiting))), 0.5)
    assert [c async for c in slow] == []  # the first one finishes and lets the second run
    assert b"uuid:two" in await pending
