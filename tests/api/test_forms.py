"""Form management over HTTP: uploads (XForm and XLSForm), drafts, versions, attachments,
lifecycle, and the refusal of bad or hostile uploads."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from tests.conftest import Person

XML = {"Content-Type": "application/xml"}
MD = {"Content-Type": "text/markdown"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

XFORM = """<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Simple</h:title>
    <model>
      <itext><translation lang="default" default="true()">
        <text id="logo"><value form="image">jr://images/logo.png</value></text>
      </translation></itext>
      <instance>
        <data id="simple" version="{version}"><name/><age/><meta><instanceID/></meta></data>
      </instance>
      <bind nodeset="/data/name" type="string"/>
      <bind nodeset="/data/age" type="int"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/name"><label ref="jr:itext('logo')"/></input>
    <input ref="/data/age"><label>Age</label></input>
  </h:body>
</h:html>"""

XLSFORM_MD = """
| survey |
|        | type             | name   | label        |
|        | text             | name   | Your name    |
|        | select_one yesno | agrees | Do you agree |
| choices |
|         | list_name | name | label |
|         | yesno     | yes  | Yes   |
|         | yesno     | no   | No    |
| settings |
|          | form_id  | version |
|          | md_form  | 1       |
"""


def xform(version: str = "1") -> bytes:
    return XFORM.replace("{version}", version).encode()


async def project(client: httpx.AsyncClient, admin: Person) -> int:
    response = await client.post("/v1/projects", json={"name": "Forms"}, headers=admin.auth)
    assert response.status_code == 200
    return int(response.json()["id"])


async def upload(
    client: httpx.AsyncClient, admin: Person, pid: int, body: bytes, headers: dict[str, str], **params: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/projects/{pid}/forms", content=body, params=params, headers={**admin.auth, **headers}
    )


async def test_an_xform_upload_publishes_and_reads_back_byte_for_byte(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, xform(), XML, publish="True")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["xmlFormId"] == "simple"
    assert body["version"] == "1"
    assert body["hash"] == hashlib.md5(xform()).hexdigest()
    assert body["publishedAt"] is not None
    assert body["state"] == "open"
    xml = await client.get(f"/v1/projects/{pid}/forms/simple.xml", headers=admin.auth)
    assert xml.content == xform()
    listed = await client.get(f"/v1/projects/{pid}/forms", headers=admin.auth)
    assert [f["xmlFormId"] for f in listed.json()] == ["simple"]
    fields = (await client.get(f"/v1/projects/{pid}/forms/simple/fields", headers=admin.auth)).json()
    assert [(f["path"], f["type"]) for f in fields] == [
        ("/name", "string"),
        ("/age", "int"),
        ("/meta", "structure"),
        ("/meta/instanceID", "string"),
    ]


async def test_the_same_form_id_twice_is_a_conflict(client: httpx.AsyncClient, admin: Person) -> None:
    pid = await project(client, admin)
    assert (await upload(client, admin, pid, xform(), XML)).status_code == 200
    second = await upload(client, admin, pid, xform("2"), XML)
    assert second.status_code == 409
    assert second.json()["code"] == 409.3


async def test_an_xlsform_in_markdown_converts_and_keeps_choices(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, XLSFORM_MD.encode(), MD, publish="true")
    assert response.status_code == 200, response.text
    assert response.json()["xmlFormId"] == "md_form"
    fields = (await client.get(f"/v1/projects/{pid}/forms/md_form/fields", headers=admin.auth)).json()
    agrees = next(f for f in fields if f["path"] == "/agrees")
    assert [c["value"] for c in agrees["choices"]] == ["yes", "no"]


async def test_a_broken_xlsform_is_400_15_naming_the_row(client: httpx.AsyncClient, admin: Person) -> None:
    pid = await project(client, admin)
    broken = XLSFORM_MD.replace("select_one yesno", "select_one nolist")
    response = await upload(client, admin, pid, broken.encode(), MD)
    assert response.status_code == 400
    assert response.json()["code"] == 400.15
    assert "row" in response.json()["details"]["error"].lower()
    listed = await client.get(f"/v1/projects/{pid}/forms", headers=admin.auth)
    assert listed.json() == []


async def test_a_slow_conversion_answers_202_with_a_handle_that_completes(
    client: httpx.AsyncClient, admin: Person, container: Any
) -> None:
    pid = await project(client, admin)
    container.forms.uploads._wait = 0  # answer at once: the conversion continues in the background
    response = await upload(client, admin, pid, XLSFORM_MD.encode(), MD)
    assert response.status_code == 202, response.text
    url = response.json()["statusUrl"]
    for _ in range(100):
        status = (await client.get(url, headers=admin.auth)).json()
        if status["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert status["status"] == "done"
    assert status["xmlFormId"] == "md_form"
    assert (await client.get(f"/v1/projects/{pid}/forms/md_form", headers=admin.auth)).status_code == 200


async def test_drafts_publish_with_a_new_version_and_refuse_a_used_one(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    await upload(client, admin, pid, xform("1"), XML, publish="true")
    base = f"/v1/projects/{pid}/forms/simple"
    draft = await client.post(base + "/draft", headers=admin.auth)
    assert draft.status_code == 200, draft.text
    assert len(draft.json()["draftToken"]) >= 64
    clash = await client.post(base + "/draft/publish", headers=admin.auth)
    assert clash.status_code == 409
    assert clash.json()["code"] == 409.6
    published = await client.post(base + "/draft/publish", params={"version": "2"}, headers=admin.auth)
    assert published.json() == {"success": True}
    versions = (await client.get(base + "/versions", headers=admin.auth)).json()
    assert sorted(v["version"] for v in versions) == ["1", "2"]
    old = await client.get(base + "/versions/1.xml", headers=admin.auth)
    assert old.content == xform("1")
    current = await client.get(base + ".xml", headers=admin.auth)
    assert b'version="2"' in current.content


async def test_draft_attachments_carry_etags_and_over_to_the_published_version(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    await upload(client, admin, pid, xform("1"), XML)
    base = f"/v1/projects/{pid}/forms/simple"
    listed = (await client.get(base + "/draft/attachments", headers=admin.auth)).json()
    assert listed[0]["name"] == "logo.png"
    assert listed[0]["exists"] is False
    unknown = await client.post(base + "/draft/attachments/other.png", content=b"x", headers=admin.auth)
    assert unknown.status_code == 404
    png = b"\x89PNG fake image bytes"
    stored = await client.post(
        base + "/draft/attachments/logo.png", content=png, headers={**admin.auth, "Content-Type": "image/png"}
    )
    assert stored.status_code == 200, stored.text
    assert (await client.post(base + "/draft/publish", headers=admin.auth)).status_code == 200
    got = await client.get(base + "/attachments/logo.png", headers=admin.auth)
    assert got.content == png
    assert got.headers["etag"] == f'"{hashlib.md5(png).hexdigest()}"'
    again = await client.get(
        base + "/attachments/logo.png", headers={**admin.auth, "If-None-Match": got.headers["etag"]}
    )
    assert again.status_code == 304


async def test_form_state_delete_and_restore(client: httpx.AsyncClient, admin: Person) -> None:
    pid = await project(client, admin)
    await upload(client, admin, pid, xform(), XML, publish="true")
    base = f"/v1/projects/{pid}/forms/simple"
    closed = await client.patch(base, json={"state": "closed"}, headers=admin.auth)
    assert closed.json()["state"] == "closed"
    bad = await client.patch(base, json={"state": "sleeping"}, headers=admin.auth)
    assert bad.status_code == 400
    assert (await client.delete(base, headers=admin.auth)).json() == {"success": True}
    assert (await client.get(base, headers=admin.auth)).status_code == 404
    trashed = (
        await client.get(f"/v1/projects/{pid}/forms", params={"deleted": "true"}, headers=admin.auth)
    ).json()
    restored = await client.post(f"/v1/projects/{pid}/forms/{trashed[0]['id']}/restore", headers=admin.auth)
    assert restored.status_code == 200
    assert (await client.get(base, headers=admin.auth)).status_code == 200


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
            XML,
            400,
            400.1,
        ),
        (b"<h:html xmlns:h='http://www.w3.org/1999/xhtml'/>", XML, 400, 400.41),
        (b"\xff\xfe\x00garbage", {"Content-Type": XLSX_TYPE}, 400, 400.15),
        (b"name,label", {"Content-Type": "image/png"}, 415, 415.1),
    ],
    ids=["xxe", "not-an-xform", "garbage-xlsx", "wrong-type"],
)
async def test_bad_uploads_are_refused_and_store_nothing(
    client: httpx.AsyncClient, admin: Person, body: bytes, headers: dict[str, str], status: int, code: float
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, body, headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert (await client.get(f"/v1/projects/{pid}/forms", headers=admin.auth)).json() == []


async def test_a_form_created_as_a_draft_answers_its_draft_token(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    created = await upload(client, admin, pid, xform(), XML)
    token = created.json()["draftToken"]
    assert len(token) >= 64
    listing = await client.get(
        f"/v1/test/{token}/projects/{pid}/forms/simple/draft/formList", headers={"X-OpenRosa-Version": "1.0"}
    )
    assert listing.status_code == 200
