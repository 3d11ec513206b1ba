"""`/v1/projects/{p}/forms/{f}/public-links`: anonymous web-form respondents of one form (ODK
Central's public access links), over HTTP on the real services: the link's token (`?st=`, as
Enketo sends it) reads its open form and submits to it and nothing else; deleting or revoking
the link stops the token at once."""

from __future__ import annotations

from typing import Any

import httpx
from lxml import etree
from sqlalchemy import text
from tests.aggregation_forms import catch_up
from tests.api.test_forms import XML, project, upload
from tests.api.test_openrosa import OR, PUBLIC, XFORMS, plain_xform
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container

LINK_FIELDS = {
    "id",
    "type",
    "displayName",
    "projectId",
    "token",
    "once",
    "createdAt",
    "updatedAt",
    "deletedAt",
}


def links_url(pid: int, form_id: str = "survey") -> str:
    return f"/v1/projects/{pid}/forms/{form_id}/public-links"


async def survey_project(client: httpx.AsyncClient, admin: Person) -> int:
    pid = await project(client, admin)
    for form_id in ("survey", "other"):
        response = await upload(client, admin, pid, plain_xform(form_id, form_id), XML, publish="true")
        assert response.status_code == 200, response.text
    return pid


async def create_link(
    client: httpx.AsyncClient, who: Person, pid: int, name: str = "Website", **extra: Any
) -> dict[str, Any]:
    response = await client.post(links_url(pid), json={"displayName": name, **extra}, headers=who.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def answer(form_id: str, instance_id: str, value: str = "hello") -> bytes:
    return (
        f'<data id="{form_id}"><q>{value}</q><meta><instanceID>{instance_id}</instanceID></meta></data>'
    ).encode()


def openrosa_post(client: httpx.AsyncClient, url: str, xml: bytes) -> Any:
    files = {"xml_submission_file": ("submission.xml", xml, "text/xml")}
    return client.post(url, files=files, headers=OR)


async def test_a_link_carries_a_token_shown_again_in_the_listing_with_its_creator(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = await survey_project(client, admin)
    created = await create_link(client, admin, pid, "Campaign page", once=True)
    assert set(created) == LINK_FIELDS
    assert created["type"] == "public_link" and created["displayName"] == "Campaign page"
    assert created["once"] is True and created["projectId"] == pid
    assert isinstance(created["token"], str) and len(created["token"]) >= 64
    plain = await create_link(client, admin, pid, "Poster")
    assert plain["once"] is False

    listed = (await client.get(links_url(pid), headers=admin.auth)).json()
    assert listed == [plain, created]  # newest first, tokens shown again while active
    extended = (
        await client.get(links_url(pid), headers={**admin.auth, "X-Extended-Metadata": "true"})
    ).json()
    assert [link["createdBy"]["id"] for link in extended] == [admin.id, admin.id]
    assert (await client.get(links_url(pid, "other"), headers=admin.auth)).json() == []

    async with container.db.read() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM users.sessions"))).scalars().all()
        audits = (
            (
                await conn.execute(
                    text("SELECT details FROM events.audits WHERE action = 'public_link.create' ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
    assert created["token"] not in stored, "tokens are stored hashed"
    assert [a["displayName"] for a in audits] == ["Campaign page", "Poster"]
    assert audits[0] == {"xmlFormId": "survey", "displayName": "Campaign page", "once": True}


async def test_the_token_reads_its_open_form_and_submits_to_it_and_nothing_else(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = await survey_project(client, admin)
    link = await create_link(client, admin, pid)
    st = {"st": link["token"]}

    form = await client.get(f"/v1/projects/{pid}/forms/survey.xml", params=st)
    assert form.status_code == 200 and b'id="survey"' in form.content
    # Enketo's formList and HEAD: only its form, with URLs that carry the token again.
    listing = await client.get(f"/v1/projects/{pid}/formList", params=st, headers=OR)
    entries = etree.fromstring(listing.content)
    assert [x.findtext(f"{XFORMS}formID") for x in entries] == ["survey"]
    download = entries[0].findtext(f"{XFORMS}downloadUrl")
    assert download is not None and download.endswith(f"/forms/survey.xml?st={link['token']}")
    fetched = await client.get(download.replace(PUBLIC, ""))
    assert fetched.status_code == 200 and fetched.content == form.content
    head = await client.head(f"/v1/projects/{pid}/submission", params=st, headers=OR)
    assert head.status_code == 204
    # Enketo's way: OpenRosa with ?st=. As in Central, the `/v1/key/` prefix is for app users only.
    first = await openrosa_post(
        client, f"/v1/projects/{pid}/submission?st={link['token']}", answer("survey", "uuid:p1")
    )
    assert first.status_code == 201, first.text
    keyed = await openrosa_post(
        client, f"/v1/key/{link['token']}/projects/{pid}/submission", answer("survey", "uuid:p2")
    )
    assert keyed.status_code == 403
    rest = await client.post(
        f"/v1/projects/{pid}/forms/survey/submissions",
        params=st,
        content=answer("survey", "uuid:p3"),
        headers=XML,
    )
    assert rest.status_code == 200, rest.text

    # Only its own form, and no reading of anything.
    elsewhere = await openrosa_post(
        client, f"/v1/projects/{pid}/submission?st={link['token']}", answer("other", "uuid:o1")
    )
    assert elsewhere.status_code == 403
    assert (await client.get(f"/v1/projects/{pid}/forms/other.xml", params=st)).status_code == 403
    assert (await client.get(f"/v1/projects/{pid}/forms/survey/submissions", params=st)).status_code == 403
    assert (await client.get(links_url(pid), params=st)).status_code == 403

    submissions = (
        await client.get(f"/v1/projects/{pid}/forms/survey/submissions", headers=admin.auth)
    ).json()
    assert sorted(s["instanceId"] for s in submissions) == ["uuid:p1", "uuid:p3"]
    assert {s["submitterId"] for s in submissions} == {link["id"]}
    await catch_up(container)
    feed = (await client.get(f"/v1/projects/{pid}/forms/survey.svc/Submissions", headers=admin.auth)).json()
    assert {row["__system"]["submitterName"] for row in feed["value"]} == {"Website"}

    # A closed form takes no more web submissions.
    await client.patch(f"/v1/projects/{pid}/forms/survey", json={"state": "closed"}, headers=admin.auth)
    closed = await openrosa_post(
        client, f"/v1/projects/{pid}/submission?st={link['token']}", answer("survey", "uuid:p4")
    )
    assert closed.status_code == 409


async def test_deleting_a_link_stops_its_token_and_removes_it(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = await survey_project(client, admin)
    link = await create_link(client, admin, pid)
    other_form = await client.delete(f"{links_url(pid, 'other')}/{link['id']}", headers=admin.auth)
    assert other_form.status_code == 404, "a link is deleted through its own form"
    deleted = await client.delete(f"{links_url(pid)}/{link['id']}", headers=admin.auth)
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert (await client.get(links_url(pid), headers=admin.auth)).json() == []
    refused = await openrosa_post(
        client, f"/v1/projects/{pid}/submission?st={link['token']}", answer("survey", "uuid:gone")
    )
    assert refused.status_code in (401, 403)
    again = await client.delete(f"{links_url(pid)}/{link['id']}", headers=admin.auth)
    assert again.status_code == 404
    async with container.db.read() as conn:
        grants = (
            await conn.execute(
                text("SELECT count(*) FROM users.assignments WHERE actor_id = :id"), {"id": link["id"]}
            )
        ).scalar_one()
        actions = (
            (
                await conn.execute(
                    text("SELECT action FROM events.audits WHERE action LIKE 'public_link.%' ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
    assert grants == 0 and actions == ["public_link.create", "public_link.delete"]


async def test_revoking_the_session_keeps_the_link_listed_without_a_token(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    pid = await survey_project(client, admin)
    link = await create_link(client, admin, pid)
    stranger = await make_user()
    refused = await client.delete(f"/v1/sessions/{link['token']}", headers=stranger.auth)
    assert refused.status_code == 403
    revoked = await client.delete(f"/v1/sessions/{link['token']}", headers=admin.auth)
    assert revoked.status_code == 200, revoked.text
    listed = (await client.get(links_url(pid), headers=admin.auth)).json()
    assert [(entry["id"], entry["token"]) for entry in listed] == [(link["id"], None)]
    stopped = await openrosa_post(
        client, f"/v1/projects/{pid}/submission?st={link['token']}", answer("survey", "uuid:late")
    )
    assert stopped.status_code in (401, 403)
    # An active link is listed before a revoked one, whatever their age.
    newer = await create_link(client, admin, pid, "New page")
    assert [e["id"] for e in (await client.get(links_url(pid), headers=admin.auth)).json()] == [
        newer["id"],
        link["id"],
    ]


async def test_only_managers_handle_links_and_bad_bodies_change_nothing(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    pid = await survey_project(client, admin)
    manager, viewer = await make_user(), await make_user()
    for person, role in ((manager, "manager"), (viewer, "viewer")):
        assigned = await client.post(f"/v1/projects/{pid}/assignments/{role}/{person.id}", headers=admin.auth)
        assert assigned.status_code == 200, assigned.text
    made = await create_link(client, manager, pid, "By the manager")
    assert (await client.get(links_url(pid), headers=manager.auth)).status_code == 200

    assert (await client.get(links_url(pid), headers=viewer.auth)).status_code == 403
    refused = await client.post(links_url(pid), json={"displayName": "x"}, headers=viewer.auth)
    assert refused.status_code == 403
    assert (await client.delete(f"{links_url(pid)}/{made['id']}", headers=viewer.auth)).status_code == 403
    assert (await client.post(links_url(pid), json={"displayName": "x"})).status_code in (401, 403)

    for body, code in (
        ({"displayName": "   "}, 400.8),
        ({}, 400.2),
        ({"displayName": "x", "once": "yes"}, 400.11),
        ({"displayName": "x" * 201}, 400.13),
        ({"displayName": "nul\u0000"}, 400.8),
    ):
        response = await client.post(links_url(pid), json=body, headers=admin.auth)
        assert response.status_code == 400 and response.json()["code"] == code, (body, response.text)
    missing = await client.post(links_url(pid, "nope"), json={"displayName": "x"}, headers=admin.auth)
    assert missing.status_code == 404
    assert (await client.get(links_url(pid + 1000), headers=admin.auth)).status_code in (403, 404)
    listed = (await client.get(links_url(pid), headers=admin.auth)).json()
    assert [e["id"] for e in listed] == [made["id"]], "refused requests created nothing"
