"""Submissions as ODK Collect sends them (written from the OpenRosa protocol), and the REST
API pyODK uses: create, resend, split uploads, edits, conflicts, review, comments."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
from lxml import etree
from sqlalchemy import text
from tests.api.test_forms import XML, project, upload
from tests.conftest import Person

from odk_mcp.bootstrap import Container

OR = {"X-OpenRosa-Version": "1.0"}
NS = "{http://openrosa.org/http/response}"

FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
  <h:head>
    <h:title>Visit</h:title>
    <model>
      <instance>
        <data id="visit" version="3">
          <name/><age/><photo/><sound/>
          <child jr:template=""><cname/></child>
          <meta><instanceID/><deprecatedID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/name" type="string"/>
      <bind nodeset="/data/age" type="int"/>
      <bind nodeset="/data/photo" type="binary"/>
      <bind nodeset="/data/sound" type="binary"/>
      <bind nodeset="/data/child/cname" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/name"><label>Name</label></input>
    <input ref="/data/age"><label>Age</label></input>
    <upload ref="/data/photo" mediatype="image/*"><label>Photo</label></upload>
    <upload ref="/data/sound" mediatype="audio/*"><label>Sound</label></upload>
    <repeat nodeset="/data/child"><input ref="/data/child/cname"><label>Child</label></input></repeat>
  </h:body>
</h:html>"""


def instance(instance_id: str, name: str = "Ada", age: str = "36", deprecated: str | None = None) -> bytes:
    dep = f"<deprecatedID>{deprecated}</deprecatedID>" if deprecated else ""
    return (
        f'<data id="visit" version="3"><name>{name}</name><age>{age}</age><photo>p.jpg</photo>'
        f"<sound>s.m4a</sound><child><cname>Bo</cname></child><child><cname>Cy</cname></child>"
        f"<meta><instanceID>{instance_id}</instanceID>{dep}</meta></data>"
    ).encode()


def multipart(xml: bytes, *files: tuple[str, bytes]) -> dict[str, tuple[str, bytes, str]]:
    parts = {"xml_submission_file": ("submission.xml", xml, "text/xml")}
    for name, content in files:
        parts[name] = (name, content, "application/octet-stream")
    return parts


async def setup(client: httpx.AsyncClient, admin: Person) -> tuple[int, str]:
    pid = await project(client, admin)
    assert (await upload(client, admin, pid, FORM, XML, publish="true")).status_code == 200
    created = await client.post(
        f"/v1/projects/{pid}/app-users", json={"displayName": "Phone"}, headers=admin.auth
    )
    app_user = created.json()
    await client.post(
        f"/v1/projects/{pid}/forms/visit/assignments/app-user/{app_user['id']}", headers=admin.auth
    )
    return pid, app_user["token"]


def message(response: httpx.Response) -> tuple[str, str | None]:
    root = etree.fromstring(response.content)
    assert root.tag == f"{NS}OpenRosaResponse"
    node = root.find(f"{NS}message")
    assert node is not None
    return node.get("nature", ""), node.text


async def test_collect_flow_head_post_split_resend_edit_conflict(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"

    head = await client.head(base, headers=OR)
    assert head.status_code == 204
    assert head.headers["x-openrosa-version"] == "1.0"
    assert int(head.headers["x-openrosa-accept-content-length"]) >= 10_000_000

    first = await client.post(base, files=multipart(instance("uuid:one"), ("p.jpg", b"photo")), headers=OR)
    assert first.status_code == 201, first.text
    assert first.headers["content-type"] == "text/xml; charset=utf-8"
    assert message(first)[0] == ""

    url = f"/v1/projects/{pid}/forms/visit/submissions/uuid:one"
    listed = (await client.get(url + "/attachments", headers=admin.auth)).json()
    assert listed == [{"name": "p.jpg", "exists": True}, {"name": "s.m4a", "exists": False}]

    # The rest of a split upload: the identical XML again with the remaining file.
    second = await client.post(
        base,
        files=multipart(instance("uuid:one"), ("s.m4a", b"sound")),
        data={"*isIncomplete*": "yes"},
        headers=OR,
    )
    assert second.status_code == 201
    listed = (await client.get(url + "/attachments", headers=admin.auth)).json()
    assert listed == [{"name": "p.jpg", "exists": True}, {"name": "s.m4a", "exists": True}]

    # A plain resend after a lost response is fine too.
    assert (await client.post(base, files=multipart(instance("uuid:one")), headers=OR)).status_code == 201

    # Same instanceID, different XML: a conflict, in the OpenRosa envelope.
    conflict = await client.post(base, files=multipart(instance("uuid:one", name="Eve")), headers=OR)
    assert conflict.status_code == 409
    assert message(conflict)[0] == "error"

    # An edit: a new instanceID deprecating the current one; attachments carry forward.
    edit = await client.post(
        base, files=multipart(instance("uuid:two", age="37", deprecated="uuid:one")), headers=OR
    )
    assert edit.status_code == 201, edit.text
    got = (await client.get(url, headers=admin.auth)).json()
    assert got["instanceId"] == "uuid:one"
    assert got["currentVersion"]["instanceId"] == "uuid:two"
    assert got["reviewState"] == "edited"
    versions = (await client.get(url + "/versions", headers=admin.auth)).json()
    assert [v["instanceId"] for v in versions] == ["uuid:two", "uuid:one"]
    assert (await client.get(url + "/attachments/s.m4a", headers=admin.auth)).content == b"sound"
    stale = await client.post(
        base, files=multipart(instance("uuid:three", deprecated="uuid:one")), headers=OR
    )
    assert stale.status_code == 409
    unknown = await client.post(
        base, files=multipart(instance("uuid:four", deprecated="uuid:nope")), headers=OR
    )
    assert unknown.status_code == 404


async def test_xml_is_stored_byte_for_byte_with_typed_data(client: httpx.AsyncClient, admin: Person) -> None:
    pid, token = await setup(client, admin)
    xml = instance("uuid:bytes")
    await client.post(f"/v1/key/{token}/projects/{pid}/submission", files=multipart(xml), headers=OR)
    url = f"/v1/projects/{pid}/forms/visit/submissions/uuid:bytes"
    assert (await client.get(url + ".xml", headers=admin.auth)).content == xml
    data = (await client.get(url + "/data", headers=admin.auth)).json()
    assert data["data"]["age"] == 36
    assert data["data"]["child"] == [{"cname": "Bo"}, {"cname": "Cy"}]
    assert data["flags"] == []


async def test_values_that_do_not_fit_are_stored_and_flagged(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, token = await setup(client, admin)
    xml = instance("uuid:odd", age="thirty").replace(b"<name>", b"<extra>x</extra><name>")
    response = await client.post(
        f"/v1/key/{token}/projects/{pid}/submission", files=multipart(xml), headers=OR
    )
    assert response.status_code == 201
    data = (
        await client.get(f"/v1/projects/{pid}/forms/visit/submissions/uuid:odd/data", headers=admin.auth)
    ).json()
    assert data["data"]["age"] == "thirty"
    assert {(f["path"], f["rule"]) for f in data["flags"]} == {("/age", "type"), ("/extra", "unknown")}


async def test_closed_forms_and_unknown_versions_are_refused(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    wrong_version = instance("uuid:v").replace(b'version="3"', b'version="9"')
    assert (await client.post(base, files=multipart(wrong_version), headers=OR)).status_code == 404
    await client.patch(f"/v1/projects/{pid}/forms/visit", json={"state": "closed"}, headers=admin.auth)
    closed = await client.post(base, files=multipart(instance("uuid:c")), headers=OR)
    assert closed.status_code == 409
    assert "not currently accepting" in (message(closed)[1] or "")


async def test_openrosa_errors_are_xml_envelopes(client: httpx.AsyncClient, admin: Person) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    missing = await client.post(base, files={"other": ("a.txt", b"x", "text/plain")}, headers=OR)
    assert missing.status_code == 400
    assert message(missing)[0] == "error"
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<data id="visit">&x;</data>'
    )
    refused = await client.post(base, files=multipart(hostile), headers=OR)
    assert refused.status_code == 400
    anonymous = await client.post(
        f"/v1/projects/{pid}/submission", files=multipart(instance("uuid:a")), headers=OR
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    bad_key = await client.post(
        f"/v1/key/{'x' * 64}/projects/{pid}/submission", files=multipart(instance("uuid:b"))
    )
    assert bad_key.status_code == 403
    assert message(bad_key)[0] == "error"


async def test_concurrent_posts_of_one_instance_store_exactly_one(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    same, different = instance("uuid:race"), instance("uuid:race", name="Other")
    bodies = [same if i % 2 == 0 else different for i in range(32)]
    responses = await asyncio.gather(*(client.post(base, files=multipart(b), headers=OR) for b in bodies))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    async with container.db.read() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM submissions.submissions"))).scalar_one()
        versions = (await conn.execute(text("SELECT count(*) FROM submissions.versions"))).scalar_one()
        stored = (await conn.execute(text("SELECT xml FROM submissions.versions"))).scalar_one()
    assert (count, versions) == (1, 1)
    winner = bytes(stored)
    for body, status in zip(bodies, statuses, strict=True):
        assert status == (201 if body == winner else 409)


async def test_rest_create_list_review_comment_delete_restore(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    base = f"/v1/projects/{pid}/forms/visit/submissions"
    created = await client.post(
        base,
        content=instance("uuid:rest"),
        params={"deviceID": "dev-1"},
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert (body["instanceId"], body["submitterId"], body["deviceId"]) == ("uuid:rest", admin.id, "dev-1")
    listed = await client.get(base, headers=admin.auth)
    assert [s["instanceId"] for s in listed.json()] == ["uuid:rest"]
    assert listed.headers["x-total-count"] == "1"
    reviewed = await client.patch(base + "/uuid:rest", json={"reviewState": "approved"}, headers=admin.auth)
    assert reviewed.json()["reviewState"] == "approved"
    bad = await client.patch(base + "/uuid:rest", json={"reviewState": "great"}, headers=admin.auth)
    assert bad.status_code == 400
    filtered = await client.get(base, params={"reviewState": "approved"}, headers=admin.auth)
    assert len(filtered.json()) == 1
    comment = await client.post(base + "/uuid:rest/comments", json={"body": "Checked."}, headers=admin.auth)
    assert comment.json()["body"] == "Checked."
    comments = (await client.get(base + "/uuid:rest/comments", headers=admin.auth)).json()
    assert [(c["body"], c["actorId"]) for c in comments] == [("Checked.", admin.id)]
    photo = b"late photo"
    put = await client.post(base + "/uuid:rest/attachments/p.jpg", content=photo, headers=admin.auth)
    assert put.status_code == 200
    got = await client.get(base + "/uuid:rest/attachments/p.jpg", headers=admin.auth)
    assert got.content == photo
    assert got.headers["etag"] == f'"{hashlib.md5(photo).hexdigest()}"'
    assert (await client.delete(base + "/uuid:rest", headers=admin.auth)).json() == {"success": True}
    assert (await client.get(base + "/uuid:rest", headers=admin.auth)).status_code == 404
    again = await client.post(
        base, content=instance("uuid:rest"), headers={**admin.auth, "Content-Type": "application/xml"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == 409.16
    assert (await client.post(base + "/uuid:rest/restore", headers=admin.auth)).status_code == 200
    assert (await client.get(base + "/uuid:rest", headers=admin.auth)).status_code == 200


async def test_rest_edit_needs_a_deprecated_id(client: httpx.AsyncClient, admin: Person) -> None:
    pid, _ = await setup(client, admin)
    base = f"/v1/projects/{pid}/forms/visit/submissions"
    xml_headers = {**admin.auth, "Content-Type": "application/xml"}
    await client.post(base, content=instance("uuid:e1"), headers=xml_headers)
    missing = await client.put(base + "/uuid:e1", content=instance("uuid:e2"), headers=xml_headers)
    assert missing.status_code == 400
    assert missing.json()["code"] == 400.19
    edited = await client.put(
        base + "/uuid:e1", content=instance("uuid:e2", deprecated="uuid:e1"), headers=xml_headers
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["currentVersion"]["instanceId"] == "uuid:e2"


async def test_submission_events_are_written_with_the_data(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid, token = await setup(client, admin)
    base = f"/v1/key/{token}/projects/{pid}/submission"
    await client.post(base, files=multipart(instance("uuid:ev1")), headers=OR)
    await client.post(base, files=multipart(instance("uuid:ev2", deprecated="uuid:ev1")), headers=OR)
    await client.patch(
        f"/v1/projects/{pid}/forms/visit/submissions/uuid:ev1",
        json={"reviewState": "hasIssues"},
        headers=admin.auth,
    )
    async with container.db.read() as conn:
        events = (
            (
                await conn.execute(
                    text("SELECT event FROM events.outbox WHERE event LIKE 'submission.%' ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
    assert events == ["submission.received", "submission.edited", "submission.reviewed"]
