"""The actor and form-target caches on the submission path: a change made through this server
(closing or deleting a form, revoking an app user, removing a role) applies to the very next
submission; a change made by another process applies within the configured cache time."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from tests.api.test_submissions import FORM, OR, instance, message, multipart, setup
from tests.conftest import Person

from odk_mcp.bootstrap import Container


async def post(client: httpx.AsyncClient, pid: int, token: str, instance_id: str) -> httpx.Response:
    return await client.post(
        f"/v1/key/{token}/projects/{pid}/submission", files=multipart(instance(instance_id)), headers=OR
    )


async def app_user_id(client: httpx.AsyncClient, admin: Person, pid: int) -> int:
    listed = (await client.get(f"/v1/projects/{pid}/app-users", headers=admin.auth)).json()
    return int(listed[0]["id"])


async def test_closing_and_reopening_a_form_applies_to_the_next_submission(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, token = await setup(client, admin)
    assert (await post(client, pid, token, "uuid:warm")).status_code == 201  # target now cached
    form = f"/v1/projects/{pid}/forms/visit"
    assert (await client.patch(form, json={"state": "closed"}, headers=admin.auth)).status_code == 200
    closed = await post(client, pid, token, "uuid:closed")
    assert closed.status_code == 409
    assert "not currently accepting" in (message(closed)[1] or "")
    assert (await client.patch(form, json={"state": "open"}, headers=admin.auth)).status_code == 200
    assert (await post(client, pid, token, "uuid:open")).status_code == 201


async def test_deleting_a_form_or_its_project_applies_to_the_next_submission(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, token = await setup(client, admin)
    assert (await post(client, pid, token, "uuid:warm")).status_code == 201
    assert (await client.delete(f"/v1/projects/{pid}/forms/visit", headers=admin.auth)).status_code == 200
    assert (await post(client, pid, token, "uuid:gone")).status_code == 404

    pid2, token2 = await setup(client, admin)
    assert (await post(client, pid2, token2, "uuid:warm2")).status_code == 201
    assert (await client.delete(f"/v1/projects/{pid2}", headers=admin.auth)).status_code == 200
    assert (await post(client, pid2, token2, "uuid:gone2")).status_code in (403, 404)


async def test_a_newly_published_version_is_found_at_once(client: httpx.AsyncClient, admin: Person) -> None:
    pid, token = await setup(client, admin)
    v4 = instance("uuid:v4").replace(b'version="3"', b'version="4"')
    base = f"/v1/key/{token}/projects/{pid}/submission"
    assert (await client.post(base, files=multipart(v4), headers=OR)).status_code == 404
    draft = await client.post(
        f"/v1/projects/{pid}/forms/visit/draft",
        content=FORM.replace(b'version="3"', b'version="4"'),
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert draft.status_code == 200, draft.text
    published = await client.post(f"/v1/projects/{pid}/forms/visit/draft/publish", headers=admin.auth)
    assert published.status_code == 200, published.text
    assert (await client.post(base, files=multipart(v4), headers=OR)).status_code == 201
    assert (await post(client, pid, token, "uuid:still-v3")).status_code == 201  # older versions too


async def test_revoking_an_app_user_applies_to_the_next_submission(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, token = await setup(client, admin)
    assert (await post(client, pid, token, "uuid:warm")).status_code == 201  # actor now cached
    assert (await client.delete(f"/v1/sessions/{token}", headers=admin.auth)).status_code == 200
    refused = await post(client, pid, token, "uuid:revoked")
    assert refused.status_code == 403
    assert message(refused)[0] == "error"


async def test_removing_the_form_role_applies_to_the_next_submission(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid, token = await setup(client, admin)
    assert (await post(client, pid, token, "uuid:warm")).status_code == 201
    actor_id = await app_user_id(client, admin, pid)
    removed = await client.delete(
        f"/v1/projects/{pid}/forms/visit/assignments/app-user/{actor_id}", headers=admin.auth
    )
    assert removed.status_code == 200, removed.text
    assert (await post(client, pid, token, "uuid:unassigned")).status_code == 403
    assert (
        await client.delete(f"/v1/projects/{pid}/app-users/{actor_id}", headers=admin.auth)
    ).status_code == 200
    assert (await post(client, pid, token, "uuid:deleted")).status_code == 403


@pytest.mark.parametrize("settings_overrides", [{"auth_cache_seconds": 0.5, "form_cache_seconds": 0.5}])
async def test_changes_by_another_process_apply_within_the_cache_time(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid, token = await setup(client, admin)
    assert (await post(client, pid, token, "uuid:warm")).status_code == 201
    # Another process (a second server, the CLI) closes the form: this process cannot know
    # at once, and the documented bound is the cache time.
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE forms.forms SET state = 'closed' WHERE xml_form_id = 'visit'"))
    await asyncio.sleep(0.6)
    assert (await post(client, pid, token, "uuid:after-close")).status_code == 409
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE forms.forms SET state = 'open' WHERE xml_form_id = 'visit'"))
        await conn.execute(text("DELETE FROM users.sessions WHERE actor_id IN"
                                " (SELECT id FROM users.actors WHERE type = 'field_key')"))  # fmt: skip
    await asyncio.sleep(0.6)
    assert (await post(client, pid, token, "uuid:after-revoke")).status_code == 403


@pytest.mark.parametrize("settings_overrides", [{"auth_cache_seconds": 0, "form_cache_seconds": 0}])
async def test_caches_can_be_turned_off(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid, token = await setup(client, admin)
    assert (await post(client, pid, token, "uuid:a")).status_code == 201
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE forms.forms SET state = 'closed' WHERE xml_form_id = 'visit'"))
    assert (await post(client, pid, token, "uuid:b")).status_code == 409
