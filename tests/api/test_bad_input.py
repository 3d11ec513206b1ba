"""Bad input always gets a clear 4xx with a code, never a 500, and changes nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from tests.conftest import Person

from odk_mcp.bootstrap import Container

MAX_BODY = 2048


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"max_json_body_bytes": MAX_BODY}


async def count_rows(container: Container) -> dict[str, int]:
    """Rows in every table a write could touch."""
    tables = ("forms.projects", "users.actors", "users.assignments", "users.sessions", "events.audits")
    async with container.db.read() as conn:
        return {
            table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in tables
        }


async def create_project(client: httpx.AsyncClient, admin: Person) -> dict[str, Any]:
    response = await client.post(
        "/v1/projects", json={"name": "Original", "description": "kept"}, headers=admin.auth
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, code: float) -> None:
    assert response.status_code == int(code), response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]


# -- unparseable bodies -----------------------------------------------------------------


async def test_malformed_json_is_400_1(client: httpx.AsyncClient, admin: Person) -> None:
    for raw in (b"{", b'{"name": }', b"not json", b'{"name": "x"', b"\xff\xfe", b"[" * 2000):
        response = await client.post(
            "/v1/projects", content=raw, headers={**admin.auth, "Content-Type": "application/json"}
        )
        assert_problem(response, 400.1)


async def test_json_that_is_not_an_object_is_a_400(client: httpx.AsyncClient, admin: Person) -> None:
    for body in ([], ["name"], "a string", 5, None, True):
        for path in ("/v1/projects", "/v1/users", "/v1/sessions"):
            response = await client.post(path, json=body, headers=admin.auth)
            assert response.status_code == 400, (path, body, response.text)
            assert response.json()["code"] in (400.1, 400.2), (path, body, response.text)


async def test_patch_with_a_non_object_body_is_400_and_changes_nothing(
    client: httpx.AsyncClient, admin: Person
) -> None:
    project = await create_project(client, admin)
    response = await client.patch(f"/v1/projects/{project['id']}", json=["name", "x"], headers=admin.auth)
    assert_problem(response, 400.1)
    assert (await client.get(f"/v1/projects/{project['id']}", headers=admin.auth)).json() == project


async def test_empty_body_is_a_missing_parameter(client: httpx.AsyncClient, admin: Person) -> None:
    response = await client.post(
        "/v1/projects", content=b"", headers={**admin.auth, "Content-Type": "application/json"}
    )
    assert_problem(response, 400.2)


# -- wrong types and missing fields -----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/projects", {"name": 5}, "name"),
        ("/v1/projects", {"name": "ok", "description": ["a"]}, "description"),
        ("/v1/users", {"email": 12}, "email"),
        ("/v1/users", {"email": "a@b.org", "displayName": {"x": 1}}, "displayName"),
        ("/v1/sessions", {"email": "a@b.org", "password": 123456789012}, "password"),
    ],
)
async def test_wrong_types_are_400_11_naming_the_field(
    client: httpx.AsyncClient, admin: Person, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, json=body, headers=admin.auth)
    assert_problem(response, 400.11)
    assert response.json()["details"]["field"] == field


@pytest.mark.parametrize("body", [{"archived": "maybe"}, {"archived": 7}, {"name": 5}, {"description": 1.5}])
async def test_project_patch_with_wrong_types_is_400_11_and_changes_nothing(
    client: httpx.AsyncClient, admin: Person, body: dict[str, Any]
) -> None:
    project = await create_project(client, admin)
    response = await client.patch(f"/v1/projects/{project['id']}", json=body, headers=admin.auth)
    assert_problem(response, 400.11)
    assert (await client.get(f"/v1/projects/{project['id']}", headers=admin.auth)).json() == project


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/projects", {}, "name"),
        ("/v1/projects", {"description": "no name"}, "name"),
        ("/v1/users", {"password": "long enough password"}, "email"),
        ("/v1/sessions", {"email": "a@b.org"}, "password"),
    ],
)
async def test_missing_required_fields_are_400_2(
    client: httpx.AsyncClient, admin: Person, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, json=body, headers=admin.auth)
    assert_problem(response, 400.2)
    assert response.json()["details"]["field"] == field


async def test_app_user_without_display_name_is_400_2(client: httpx.AsyncClient, admin: Person) -> None:
    project = await create_project(client, admin)
    response = await client.post(f"/v1/projects/{project['id']}/app-users", json={}, headers=admin.auth)
    assert_problem(response, 400.2)


async def test_password_change_without_the_old_password_is_400_2(
    client: httpx.AsyncClient, admin: Person
) -> None:
    response = await client.put(
        f"/v1/users/{admin.id}/password", json={"new": "a brand new password"}, headers=admin.auth
    )
    assert_problem(response, 400.2)


async def test_invalid_email_is_400_8(client: httpx.AsyncClient, admin: Person) -> None:
    for email in ("no-at-sign", "@example.org", "a b@example.org", "user@"):
        response = await client.post("/v1/users", json={"email": email}, headers=admin.auth)
        assert_problem(response, 400.8)


async def test_weak_password_is_400_21(client: httpx.AsyncClient, admin: Person) -> None:
    response = await client.post(
        "/v1/users", json={"email": "a@b.org", "password": "short"}, headers=admin.auth
    )
    assert_problem(response, 400.21)


# -- unknown and malformed ids -----------------------------------------------------------


async def test_unknown_ids_are_404_1(client: httpx.AsyncClient, admin: Person) -> None:
    project = (await create_project(client, admin))["id"]
    for method, path in (
        ("GET", "/v1/users/987654"),
        ("PATCH", "/v1/users/987654"),
        ("DELETE", "/v1/users/987654"),
        ("GET", "/v1/projects/987654"),
        ("PATCH", "/v1/projects/987654"),
        ("DELETE", "/v1/projects/987654"),
        ("GET", "/v1/projects/987654/app-users"),
        ("DELETE", f"/v1/projects/{project}/app-users/987654"),
        ("POST", f"/v1/projects/{project}/assignments/viewer/987654"),
        ("DELETE", f"/v1/projects/{project}/assignments/viewer/987654"),
        ("GET", "/v1/roles/987654"),
    ):
        body = {"displayName": "x"} if method == "PATCH" else None
        response = await client.request(method, path, json=body, headers=admin.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == 404.1


async def test_non_integer_ids_are_404_1(client: httpx.AsyncClient, admin: Person) -> None:
    for method, path in (
        ("GET", "/v1/users/abc"),
        ("PATCH", "/v1/users/1.5"),
        ("DELETE", "/v1/users/-"),
        ("GET", "/v1/projects/abc"),
        ("DELETE", "/v1/projects/%F0%9F%92%A9"),
        ("GET", "/v1/projects/abc/app-users"),
        ("DELETE", "/v1/projects/1/app-users/abc"),
        ("POST", "/v1/assignments/admin/abc"),
        ("GET", "/v1/projects/0x1/assignments"),
    ):
        response = await client.request(method, path, headers=admin.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == 404.1


async def test_ids_beyond_the_integer_range_are_404_1_not_500(
    client: httpx.AsyncClient, admin: Person
) -> None:
    for method, path in (
        ("GET", "/v1/users/99999999999999999999"),
        ("PATCH", "/v1/users/2147483648"),
        ("DELETE", "/v1/projects/9223372036854775808"),
        ("GET", "/v1/projects/-2147483649"),
        ("GET", "/v1/projects/0"),
        ("DELETE", "/v1/projects/1/app-users/4294967296"),
        ("POST", "/v1/assignments/admin/2147483648"),
        ("DELETE", "/v1/assignments/admin/2147483648"),
        ("GET", "/v1/projects/2147483648/assignments"),
    ):
        response = await client.request(method, path, json={}, headers=admin.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == 404.1


async def test_audit_paging_beyond_the_integer_range_is_400(client: httpx.AsyncClient, admin: Person) -> None:
    response = await client.get("/v1/audits", params={"offset": str(2**70)}, headers=admin.auth)
    assert_problem(response, 400.11)


# -- sizes -------------------------------------------------------------------------------


async def test_oversized_body_with_content_length_is_413_1(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    before = await count_rows(container)
    response = await client.post("/v1/projects", json={"name": "x" * (MAX_BODY + 1)}, headers=admin.auth)
    assert_problem(response, 413.1)
    assert await count_rows(container) == before


async def test_oversized_streamed_body_is_413_1(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    before = await count_rows(container)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}'

    response = await client.post(
        "/v1/projects", content=chunks(), headers={**admin.auth, "Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_problem(response, 413.1)
    assert await count_rows(container) == before


async def test_body_just_under_the_limit_is_accepted(client: httpx.AsyncClient, admin: Person) -> None:
    name = "z" * 400
    response = await client.post("/v1/projects", json={"name": name}, headers=admin.auth)
    assert response.status_code == 200
    assert response.json()["name"] == name


async def test_malformed_content_length_is_400_6(client: httpx.AsyncClient, admin: Person) -> None:
    response = await client.post(
        "/v1/projects",
        content=b'{"name": "x"}',
        headers={**admin.auth, "Content-Type": "application/json", "Content-Length": "lots"},
    )
    assert_problem(response, 400.6)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/projects", {"name": "n" * 501}, "name"),
        ("POST", "/v1/users", {"email": "a@b.org", "displayName": "d" * 201}, "displayName"),
        ("POST", "/v1/users", {"email": "e" * 330 + "@b.org"}, "email"),
        ("PATCH", "/v1/users/{admin}", {"displayName": "d" * 201}, "displayName"),
        ("PATCH", "/v1/projects/{project}", {"name": "n" * 501}, "name"),
        ("POST", "/v1/projects/{project}/app-users", {"displayName": "d" * 201}, "displayName"),
    ],
)
async def test_over_long_strings_are_400_13_and_change_nothing(
    client: httpx.AsyncClient,
    admin: Person,
    container: Container,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    project = await create_project(client, admin)
    before = await count_rows(container)
    me_before = (await client.get("/v1/users/current", headers=admin.auth)).json()

    response = await client.request(
        method, path.format(admin=admin.id, project=project["id"]), json=body, headers=admin.auth
    )

    assert_problem(response, 400.13)
    assert response.json()["details"]["field"] == field
    assert await count_rows(container) == before
    assert (await client.get(f"/v1/projects/{project['id']}", headers=admin.auth)).json() == project
    assert (await client.get("/v1/users/current", headers=admin.auth)).json() == me_before


async def test_over_long_search_query_is_400_13(client: httpx.AsyncClient, admin: Person) -> None:
    response = await client.get("/v1/users", params={"q": "q" * 201}, headers=admin.auth)
    assert_problem(response, 400.13)


async def test_nul_characters_in_body_text_are_400_8_naming_the_field(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    before = await count_rows(container)
    for method, path, body, field in (
        ("POST", "/v1/projects", {"name": "bad\u0000name"}, "name"),
        ("PATCH", f"/v1/projects/{project['id']}", {"description": "\u0000"}, "description"),
        ("POST", "/v1/users", {"email": "nul\u0000@example.org"}, "email"),
        ("PATCH", f"/v1/users/{admin.id}", {"displayName": "a\u0000"}, "displayName"),
        (
            "POST",
            "/v1/sessions",
            {"email": "nul\u0000@example.org", "password": "whatever password"},
            "email",
        ),
        ("POST", f"/v1/projects/{project['id']}/app-users", {"displayName": "\u0000"}, "displayName"),
    ):
        response = await client.request(method, path, json=body, headers=admin.auth)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == 400.8
        assert response.json()["details"]["field"] == field
    assert await count_rows(container) == before
    assert (await client.get(f"/v1/projects/{project['id']}", headers=admin.auth)).json() == project


async def test_nul_characters_in_query_strings_are_400_not_500(
    client: httpx.AsyncClient, admin: Person
) -> None:
    for path, params in (("/v1/users", {"q": "a\u0000"}), ("/v1/audits", {"action": "user\u0000"})):
        response = await client.get(path, params=params, headers=admin.auth)
        assert_problem(response, 400.8)


# -- a rejected request changes nothing --------------------------------------------------


async def test_rejected_writes_leave_every_table_unchanged(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    project = await create_project(client, admin)
    before = await count_rows(container)

    rejected = [
        await client.post("/v1/projects", json={"name": 5}, headers=admin.auth),
        await client.post("/v1/users", json={"email": "admin@EXAMPLE.org"}, headers=admin.auth),
        await client.post(f"/v1/projects/{project['id']}/assignments/admin/{admin.id}", headers=admin.auth),
        await client.patch(f"/v1/projects/{project['id']}", json={"archived": "maybe"}, headers=admin.auth),
        await client.delete("/v1/projects/999999", headers=admin.auth),
        await client.post(
            "/v1/projects", content=b"{oops", headers={**admin.auth, "Content-Type": "application/json"}
        ),
    ]

    assert [r.status_code // 100 for r in rejected] == [4] * len(rejected)
    assert await count_rows(container) == before


# -- property: random JSON never produces a 5xx -----------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
project_like = st.fixed_dictionaries(
    {}, optional={"name": json_values | st.text(), "description": json_values, "archived": json_values}
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | project_like)
async def test_random_json_bodies_never_cause_a_server_error(
    client: httpx.AsyncClient, admin: Person, body: Any
) -> None:
    response = await client.post("/v1/projects", json=body, headers=admin.auth)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["code"], float)
