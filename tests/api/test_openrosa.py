"""OpenRosa form discovery as ODK Collect uses it: formList, manifests, attachments, draft testing."""

from __future__ import annotations

import hashlib
from typing import Any
from xml.sax.saxutils import escape

import httpx
from lxml import etree
from tests.api.test_forms import XML, project, upload, xform
from tests.conftest import Person

OR = {"X-OpenRosa-Version": "1.0"}
XFORMS = "{http://openrosa.org/xforms/xformsList}"
MANIFEST = "{http://openrosa.org/xforms/xformsManifest}"
PUBLIC = "http://127.0.0.1:8383"


def plain_xform(form_id: str, title: str) -> bytes:
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>{escape(title)}</h:title>
    <model>
      <instance><data id="{form_id}"><q/></data></instance><bind nodeset="/data/q" type="string"/>
    </model>
  </h:head>
  <h:body><input ref="/data/q"><label>Q</label></input></h:body>
</h:html>""".encode()


def assert_openrosa_headers(response: httpx.Response) -> None:
    assert response.headers["x-openrosa-version"] == "1.0"
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert "date" in response.headers


async def app_user(client: httpx.AsyncClient, admin: Person, pid: int, forms: list[str]) -> str:
    created = await client.post(
        f"/v1/projects/{pid}/app-users", json={"displayName": "Tablet"}, headers=admin.auth
    )
    body = created.json()
    for form_id in forms:
        assigned = await client.post(
            f"/v1/projects/{pid}/forms/{form_id}/assignments/app-user/{body['id']}", headers=admin.auth
        )
        assert assigned.status_code == 200, assigned.text
    return str(body["token"])


async def test_form_list_has_the_openrosa_shape_and_hashes_match_downloads(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    await upload(client, admin, pid, xform("7"), XML, publish="true")
    await upload(client, admin, pid, plain_xform("plain", "Plain & <simple>"), XML, publish="true")
    response = await client.get(f"/v1/projects/{pid}/formList", headers={**admin.auth, **OR})
    assert response.status_code == 200, response.text
    assert_openrosa_headers(response)
    root = etree.fromstring(response.content)
    assert root.tag == f"{XFORMS}xforms"
    entries = {x.findtext(f"{XFORMS}formID"): x for x in root.findall(f"{XFORMS}xform")}
    assert set(entries) == {"simple", "plain"}
    simple, plain = entries["simple"], entries["plain"]
    assert simple.findtext(f"{XFORMS}version") == "7"
    assert plain.findtext(f"{XFORMS}name") == "Plain & <simple>"
    assert simple.findtext(f"{XFORMS}manifestUrl") == f"{PUBLIC}/v1/projects/{pid}/forms/simple/manifest"
    assert plain.find(f"{XFORMS}manifestUrl") is None, "no manifest for a form without media"
    for entry in (simple, plain):
        url = entry.findtext(f"{XFORMS}downloadUrl")
        assert url is not None
        assert url.startswith(PUBLIC + "/v1/projects/")
        downloaded = await client.get(url.removeprefix(PUBLIC), headers=admin.auth)
        assert entry.findtext(f"{XFORMS}hash") == "md5:" + hashlib.md5(downloaded.content).hexdigest()
    filtered = await client.get(
        f"/v1/projects/{pid}/formList", params={"formID": "plain"}, headers={**admin.auth, **OR}
    )
    assert [x.findtext(f"{XFORMS}formID") for x in etree.fromstring(filtered.content)] == ["plain"]


async def test_form_list_needs_the_openrosa_version_header(client: httpx.AsyncClient, admin: Person) -> None:
    pid = await project(client, admin)
    response = await client.get(f"/v1/projects/{pid}/formList", headers=admin.auth)
    assert response.status_code == 400


async def test_anonymous_form_list_is_challenged_for_basic_credentials(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    response = await client.get(f"/v1/projects/{pid}/formList", headers=OR)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_manifest_lists_present_attachments_with_md5_and_key_urls(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    await upload(client, admin, pid, xform("1"), XML)
    base = f"/v1/projects/{pid}/forms/simple"
    png = b"\x89PNG logo"
    await client.post(
        base + "/draft/attachments/logo.png", content=png, headers={**admin.auth, "Content-Type": "image/png"}
    )
    await client.post(base + "/draft/publish", headers=admin.auth)
    token = await app_user(client, admin, pid, ["simple"])
    response = await client.get(f"/v1/key/{token}/projects/{pid}/forms/simple/manifest", headers=OR)
    assert response.status_code == 200, response.text
    assert_openrosa_headers(response)
    root = etree.fromstring(response.content)
    assert root.tag == f"{MANIFEST}manifest"
    files = root.findall(f"{MANIFEST}mediaFile")
    assert [f.findtext(f"{MANIFEST}filename") for f in files] == ["logo.png"]
    assert files[0].findtext(f"{MANIFEST}hash") == "md5:" + hashlib.md5(png).hexdigest()
    url = files[0].findtext(f"{MANIFEST}downloadUrl")
    assert url == f"{PUBLIC}/v1/key/{token}/projects/{pid}/forms/simple/attachments/logo.png"
    assert (await client.get(url.removeprefix(PUBLIC))).content == png


async def test_app_users_see_only_assigned_open_forms(client: httpx.AsyncClient, admin: Person) -> None:
    pid = await project(client, admin)
    for form_id in ("one", "two", "three"):
        await upload(client, admin, pid, plain_xform(form_id, form_id), XML, publish="true")
    token = await app_user(client, admin, pid, ["one", "two"])
    listing = await client.get(f"/v1/key/{token}/projects/{pid}/formList", headers=OR)
    ids = [x.findtext(f"{XFORMS}formID") for x in etree.fromstring(listing.content)]
    assert ids == ["one", "two"]
    download = etree.fromstring(listing.content)[0].findtext(f"{XFORMS}downloadUrl")
    assert download is not None
    assert download.startswith(f"{PUBLIC}/v1/key/{token}/")
    await client.patch(f"/v1/projects/{pid}/forms/two", json={"state": "closed"}, headers=admin.auth)
    listing = await client.get(f"/v1/key/{token}/projects/{pid}/formList", headers=OR)
    assert [x.findtext(f"{XFORMS}formID") for x in etree.fromstring(listing.content)] == ["one"]
    assert (await client.get(f"/v1/key/{token}/projects/{pid}/forms/three.xml")).status_code == 403


async def test_draft_testing_token_opens_only_the_current_draft(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    created = await upload(client, admin, pid, xform("1"), XML, publish="true")
    assert created.status_code == 200
    draft = await client.post(f"/v1/projects/{pid}/forms/simple/draft", headers=admin.auth)
    token = draft.json()["draftToken"]
    prefix = f"/v1/test/{token}/projects/{pid}/forms/simple/draft"
    listing = await client.get(prefix + "/formList", headers=OR)
    assert listing.status_code == 200, listing.text
    entry = etree.fromstring(listing.content)[0]
    assert entry.findtext(f"{XFORMS}downloadUrl") == f"{PUBLIC}{prefix}.xml"
    assert (await client.get(prefix + ".xml")).content == xform("1")
    wrong = await client.get(f"/v1/test/{'x' * 64}/projects/{pid}/forms/simple/draft/formList", headers=OR)
    assert wrong.status_code == 404
    await client.post(
        f"/v1/projects/{pid}/forms/simple/draft/publish", params={"version": "2"}, headers=admin.auth
    )
    stale = await client.get(prefix + "/formList", headers=OR)
    assert stale.status_code == 404


async def test_data_collectors_see_open_forms_and_viewers_see_all(
    client: httpx.AsyncClient, admin: Person, make_user: Any
) -> None:
    pid = await project(client, admin)
    for form_id in ("open_one", "closed_one"):
        await upload(client, admin, pid, plain_xform(form_id, form_id), XML, publish="true")
    await client.patch(f"/v1/projects/{pid}/forms/closed_one", json={"state": "closed"}, headers=admin.auth)
    collector = await make_user()
    viewer = await make_user()
    for person, role in ((collector, "formfill"), (viewer, "viewer")):
        assigned = await client.post(f"/v1/projects/{pid}/assignments/{role}/{person.id}", headers=admin.auth)
        assert assigned.status_code == 200
    collected = await client.get(f"/v1/projects/{pid}/forms", headers=collector.auth)
    assert [f["xmlFormId"] for f in collected.json()] == ["open_one"]
    assert (
        await client.get(f"/v1/projects/{pid}/forms/closed_one.xml", headers=collector.auth)
    ).status_code == 403
    listing = await client.get(f"/v1/projects/{pid}/formList", headers={**collector.auth, **OR})
    assert [x.findtext(f"{XFORMS}formID") for x in etree.fromstring(listing.content)] == ["open_one"]
    viewed = await client.get(f"/v1/projects/{pid}/forms", headers=viewer.auth)
    assert sorted(f["xmlFormId"] for f in viewed.json()) == ["closed_one", "open_one"]
    assert (
        await client.post(f"/v1/projects/{pid}/forms/open_one/draft", headers=viewer.auth)
    ).status_code == 403


async def test_form_list_errors_are_openrosa_envelopes(client: httpx.AsyncClient, admin: Person) -> None:
    pid = await project(client, admin)
    missing_header = await client.get(f"/v1/projects/{pid}/formList", headers=admin.auth)
    assert missing_header.status_code == 400
    assert missing_header.headers["x-openrosa-version"] == "1.0"
    root = etree.fromstring(missing_header.content)
    assert root.tag == "{http://openrosa.org/http/response}OpenRosaResponse"
    assert root[0].get("nature") == "error"
    bad_key = await client.get(f"/v1/key/{'k' * 64}/projects/{pid}/formList", headers=OR)
    assert bad_key.status_code == 403
    assert etree.fromstring(bad_key.content)[0].get("nature") == "error"
