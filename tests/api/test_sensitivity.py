"""The form-level sensitivity setting over REST: defaults, changes by a manager, refusals."""

from __future__ import annotations

import httpx
from tests.conftest import MakeUser, Person
from tests.mcp.conftest import SURVEY

BASE = "/v1/projects/{p}/forms/household/sensitivity"


async def make_form(client: httpx.AsyncClient, admin: Person) -> int:
    pid = int((await client.post("/v1/projects", json={"name": "S"}, headers=admin.auth)).json()["id"])
    headers = {**admin.auth, "Content-Type": "application/xml"}
    assert (
        await client.post(f"/v1/projects/{pid}/forms?publish=true", content=SURVEY, headers=headers)
    ).is_success
    return pid


async def test_defaults_can_be_changed_and_reset_by_a_manager(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await make_form(client, admin)
    url = BASE.format(p=pid)
    before = {f["path"]: f for f in (await client.get(url, headers=admin.auth)).json()["fields"]}
    assert before["/phone"] == {
        "path": "/phone",
        "sensitive": True,
        "source": "default",
        "defaultReason": "phone number",
    }
    assert before["/age"]["sensitive"] is False
    changed = await client.patch(url, json={"fields": {"/phone": False, "/age": True}}, headers=admin.auth)
    assert changed.status_code == 200, changed.text
    after = {f["path"]: f for f in changed.json()["fields"]}
    assert (after["/phone"]["sensitive"], after["/phone"]["source"]) == (False, "setting")
    assert (after["/age"]["sensitive"], after["/age"]["source"]) == (True, "setting")
    reset = await client.patch(url, json={"fields": {"/phone": None}}, headers=admin.auth)
    assert {f["path"]: f["source"] for f in reset.json()["fields"]}["/phone"] == "default"


async def test_unknown_paths_and_outsiders_are_refused(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    pid = await make_form(client, admin)
    url = BASE.format(p=pid)
    unknown = await client.patch(url, json={"fields": {"/nope": True, "/child": True}}, headers=admin.auth)
    assert unknown.status_code == 400 and unknown.json()["code"] == 400.8
    assert unknown.json()["details"]["unknown"] == ["/child", "/nope"]
    outsider = await make_user()
    assert (await client.get(url, headers=outsider.auth)).status_code == 403
    assert (
        await client.patch(url, json={"fields": {"/age": True}}, headers=outsider.auth)
    ).status_code == 403
    assert (
        await client.get(BASE.format(p=pid).replace("household", "missing"), headers=admin.auth)
    ).status_code == 404
