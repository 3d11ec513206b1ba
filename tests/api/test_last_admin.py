"""The server always keeps at least one administrator."""

from __future__ import annotations

import httpx
from tests.conftest import MakeUser, Person


async def test_the_last_administrator_cannot_be_removed_or_deleted(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    unassign = await client.delete(f"/v1/assignments/admin/{admin.id}", headers=admin.auth)
    assert unassign.status_code == 409
    assert unassign.json()["code"] == 409.17
    delete = await client.delete(f"/v1/users/{admin.id}", headers=admin.auth)
    assert delete.status_code == 409
    assert (await client.get("/v1/users/current", headers=admin.auth)).status_code == 200, "nothing changed"

    second = await make_user(admin=True)
    assert (await client.delete(f"/v1/users/{admin.id}", headers=second.auth)).status_code == 200
    last = await client.delete(f"/v1/assignments/admin/{second.id}", headers=second.auth)
    assert last.status_code == 409
