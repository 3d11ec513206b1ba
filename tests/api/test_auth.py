"""Authentication over HTTP: sessions, HTTP Basic, cookies with CSRF, app-user keys, login
throttling and the password policy, against the real app and database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from tests.conftest import PASSWORD, MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.gateway import create_app
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.users.domain import credentials

NEW_PASSWORD = "a much longer and newer passphrase"
HTTPS = {"X-Forwarded-Proto": "https"}
URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def basic(email: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}", **HTTPS}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: httpx.Response) -> tuple[int, float | None]:
    return response.status_code, response.json().get("code")


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/sessions", json={"email": email, "password": password})


async def session_rows(container: Container) -> list[dict[str, Any]]:
    async with container.db.read() as conn:
        rows = (await conn.execute(text("SELECT * FROM users.sessions"))).mappings().all()
    return [dict(r) for r in rows]


async def user_without_session(container: Container, email: str = "basic@example.org") -> str:
    """A user with a password who has not logged in (so nothing about them is cached)."""
    await container.users.accounts.create_user(SYSTEM, email, PASSWORD, None)
    return email


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts password verifications (the expensive argon2 step) while the test runs."""
    calls: list[str] = []
    real = credentials.verify_password

    def counting(stored_hash: str, password: str) -> bool:
        calls.append(password)
        return real(stored_hash, password)

    monkeypatch.setattr(credentials, "verify_password", counting)
    return calls


@asynccontextmanager
async def client_at(container: Container, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same server, coming from another address."""
    transport = httpx.ASGITransport(app=create_app(container=container), client=(address, 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
        yield other


# -- sessions ----------------------------------------------------------------------------


async def test_login_answers_a_long_url_safe_token_csrf_and_times(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)

    response = await login(client, email)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "csrf", "expiresAt", "createdAt"}
    assert len(body["token"]) >= 64
    assert set(body["token"]) <= URL_SAFE
    assert len(body["csrf"]) >= 32
    assert (when(body["expiresAt"]) - when(body["createdAt"])).total_seconds() == 24 * 3600
    assert abs((when(body["createdAt"]) - datetime.now(UTC)).total_seconds()) < 60
    me = await client.get("/v1/users/current", headers=bearer(body["token"]))
    assert me.json()["email"] == email


async def test_login_sets_a_host_only_secure_http_only_session_cookie(
    client: httpx.AsyncClient, container: Container
) -> None:
    response = await login(client, await user_without_session(container))

    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"__Host-session={response.json()['token']};")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path=/", "samesite=strict", "max-age=86400"} <= attributes
    assert not any(a.startswith("domain=") for a in attributes)


async def test_each_login_opens_a_distinct_session(client: httpx.AsyncClient, container: Container) -> None:
    email = await user_without_session(container)

    first, second = (await login(client, email)).json(), (await login(client, email)).json()

    assert first["token"] != second["token"]
    assert first["csrf"] != second["csrf"]


async def test_session_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, container: Container, make_user: MakeUser
) -> None:
    person = await make_user()

    rows = await session_rows(container)

    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    assert person.token not in stored
    assert rows[0]["token_hash"] == hashlib.sha256(person.token.encode()).hexdigest()


async def test_app_user_tokens_are_not_stored_in_clear_either(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    project = await create_project(client, admin, "Field")
    token = (await create_app_user(client, admin, project))["token"]

    query = text("SELECT s::text, a::text FROM users.sessions s, users.actors a")
    async with container.db.read() as conn:
        dump = (await conn.execute(query)).all()

    assert dump
    assert not any(token in session or token in actor for session, actor in dump)


@pytest.mark.parametrize("settings_overrides", [{"session_ttl_hours": 0.0003}])
async def test_a_session_expires_after_the_configured_lifetime(
    client: httpx.AsyncClient, container: Container
) -> None:
    body = (await login(client, await user_without_session(container))).json()
    lifetime = when(body["expiresAt"]) - when(body["createdAt"])
    assert lifetime.total_seconds() == pytest.approx(1.08, abs=0.002)
    assert (await client.get("/v1/users/current", headers=bearer(body["token"]))).status_code == 200

    await asyncio.sleep((when(body["expiresAt"]) - datetime.now(UTC)).total_seconds() + 0.1)

    assert problem(await client.get("/v1/users/current", headers=bearer(body["token"]))) == (401, 401.2)


async def test_a_session_past_its_expiry_time_is_refused(
    client: httpx.AsyncClient, container: Container, make_user: MakeUser
) -> None:
    person = await make_user()
    async with container.db.transaction() as conn:
        await conn.execute(text("UPDATE users.sessions SET expires_at = now() - interval '1 second'"))

    response = await client.get("/v1/users/current", headers=person.auth)

    assert problem(response) == (401, 401.2)


async def test_logging_out_revokes_the_current_session(
    client: httpx.AsyncClient, container: Container, make_user: MakeUser
) -> None:
    person = await make_user()

    response = await client.delete("/v1/sessions/current", headers=person.auth)

    assert response.json() == {"success": True}
    assert problem(await client.get("/v1/users/current", headers=person.auth)) == (401, 401.2)
    assert await session_rows(container) == []


async def test_a_user_ends_another_of_their_own_sessions_by_its_token(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user()
    other = (await login(client, person.email)).json()["token"]

    response = await client.delete(f"/v1/sessions/{other}", headers=person.auth)

    assert response.json() == {"success": True}
    assert problem(await client.get("/v1/users/current", headers=bearer(other))) == (401, 401.2)
    assert (await client.get("/v1/users/current", headers=person.auth)).status_code == 200


async def test_a_user_cannot_end_someone_elses_session_but_an_administrator_can(
    client: httpx.AsyncClient, make_user: MakeUser, admin: Person
) -> None:
    victim, intruder = await make_user(), await make_user()

    refused = await client.delete(f"/v1/sessions/{victim.token}", headers=intruder.auth)

    assert problem(refused) == (403, 403.1)
    assert (await client.get("/v1/users/current", headers=victim.auth)).status_code == 200
    ended = await client.delete(f"/v1/sessions/{victim.token}", headers=admin.auth)
    assert ended.status_code == 200
    assert problem(await client.get("/v1/users/current", headers=victim.auth)) == (401, 401.2)


async def test_ending_a_session_needs_authentication(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    person = await make_user()

    response = await client.delete(f"/v1/sessions/{person.token}")

    assert problem(response) == (401, 401.1)
    assert (await client.get("/v1/users/current", headers=person.auth)).status_code == 200


# -- bad credentials ---------------------------------------------------------------------


async def test_no_credentials_is_401_1_and_bad_credentials_are_401_2(client: httpx.AsyncClient) -> None:
    assert problem(await client.get("/v1/users/current")) == (401, 401.1)
    assert problem(await client.get("/v1/users/current", headers=bearer("x" * 64))) == (401, 401.2)


MALFORMED_AUTHORIZATION = {
    "digest": "Digest username=admin",
    "unknown scheme": "Token abc",
    "bearer without token": "Bearer",
    "overlong bearer": "Bearer " + "x" * 300,
    "bad base64": "Basic !!!not-base64!!!",
    "basic without colon": "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "basic without email": "Basic " + base64.b64encode(b":password-without-email").decode(),
    "basic not utf-8": "Basic " + base64.b64encode(b"\xff\xfe@example.org:password").decode(),
    "empty": "",
}


async def test_a_malformed_authorization_header_is_401_2(client: httpx.AsyncClient) -> None:
    outcomes = {
        label: problem(await client.get("/v1/users/current", headers={"Authorization": header, **HTTPS}))
        for label, header in MALFORMED_AUTHORIZATION.items()
    }

    assert outcomes == dict.fromkeys(MALFORMED_AUTHORIZATION, (401, 401.2))


async def test_wrong_password_and_unknown_email_fail_alike_and_cost_the_same(
    client: httpx.AsyncClient, container: Container, argon2_calls: list[str]
) -> None:
    email = await user_without_session(container)

    wrong_password = await login(client, email, "not the password at all")
    unknown_email = await login(client, "nobody@example.org")

    assert problem(wrong_password) == problem(unknown_email) == (401, 401.2)
    assert wrong_password.json() == unknown_email.json()
    assert len(argon2_calls) == 2  # the unknown email is checked against a dummy hash


async def test_an_email_with_a_nul_character_fails_to_authenticate_rather_than_crashing(
    client: httpx.AsyncClient,
) -> None:
    for email in ("nul\x00@example.org", "\x00"):
        by_basic = await client.get("/v1/users/current", headers=basic(email, PASSWORD))
        by_login = await login(client, email)

        assert problem(by_basic) == (401, 401.2)
        assert 400 <= by_login.status_code < 500
        assert by_login.json()["code"] // 100 == by_login.status_code // 100


# -- HTTP Basic --------------------------------------------------------------------------


async def test_basic_over_plain_http_is_refused_with_401_3(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)
    headers = basic(email, PASSWORD)
    del headers["X-Forwarded-Proto"]

    response = await client.get("/v1/users/current", headers=headers)

    assert problem(response) == (401, 401.3)


async def test_basic_behind_a_proxy_that_terminates_https_is_accepted(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)

    response = await client.get("/v1/users/current", headers=basic(email, PASSWORD))

    assert response.status_code == 200
    assert response.json()["email"] == email


@pytest.mark.parametrize("settings_overrides", [{"trust_forwarded_proto": False}])
async def test_basic_is_refused_when_forwarded_https_is_not_trusted(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)

    response = await client.get("/v1/users/current", headers=basic(email, PASSWORD))

    assert problem(response) == (401, 401.3)


async def test_basic_with_a_wrong_password_is_401_2(client: httpx.AsyncClient, container: Container) -> None:
    email = await user_without_session(container)

    response = await client.get("/v1/users/current", headers=basic(email, "wrong password here"))

    assert problem(response) == (401, 401.2)


async def test_repeated_basic_requests_verify_the_password_only_once(
    client: httpx.AsyncClient, container: Container, argon2_calls: list[str]
) -> None:
    email = await user_without_session(container)

    statuses = [
        (await client.get("/v1/users/current", headers=basic(email, PASSWORD))).status_code for _ in range(3)
    ]

    assert statuses == [200, 200, 200]
    assert argon2_calls == [PASSWORD]


async def test_wrong_basic_passwords_are_never_cached(
    client: httpx.AsyncClient, container: Container, argon2_calls: list[str]
) -> None:
    email = await user_without_session(container)

    first = await client.get("/v1/users/current", headers=basic(email, "wrong password here"))
    second = await client.get("/v1/users/current", headers=basic(email, "wrong password here"))

    assert problem(first) == problem(second) == (401, 401.2)
    assert len(argon2_calls) == 2


@pytest.mark.parametrize("settings_overrides", [{"basic_auth_cache_seconds": 0}])
async def test_basic_cache_can_be_turned_off(
    client: httpx.AsyncClient, container: Container, argon2_calls: list[str]
) -> None:
    email = await user_without_session(container)

    for _ in range(2):
        assert (await client.get("/v1/users/current", headers=basic(email, PASSWORD))).status_code == 200

    assert argon2_calls == [PASSWORD, PASSWORD]


async def test_basic_cache_does_not_accept_the_old_password_after_a_change(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user()
    assert (await client.get("/v1/users/current", headers=basic(person.email, PASSWORD))).status_code == 200

    changed = await client.put(
        f"/v1/users/{person.id}/password", json={"old": PASSWORD, "new": NEW_PASSWORD}, headers=person.auth
    )

    assert changed.status_code == 200
    old = await client.get("/v1/users/current", headers=basic(person.email, PASSWORD))
    assert problem(old) == (401, 401.2)
    new = await client.get("/v1/users/current", headers=basic(person.email, NEW_PASSWORD))
    assert new.status_code == 200


# -- app-user keys -----------------------------------------------------------------------


async def create_project(client: httpx.AsyncClient, admin: Person, name: str) -> int:
    response = await client.post("/v1/projects", json={"name": name}, headers=admin.auth)
    assert response.status_code == 200, response.text
    project_id: int = response.json()["id"]
    return project_id


async def create_app_user(client: httpx.AsyncClient, admin: Person, project_id: int) -> dict[str, Any]:
    response = await client.post(
        f"/v1/projects/{project_id}/app-users", json={"displayName": "Tablet"}, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_app_user_key_authenticates_requests_under_the_key_prefix(
    client: httpx.AsyncClient, admin: Person
) -> None:
    own = await create_project(client, admin, "Own")
    other = await create_project(client, admin, "Other")
    key = (await create_app_user(client, admin, own))["token"]
    assert len(key) >= 64

    roles = await client.get(f"/v1/key/{key}/roles")
    projects = await client.get(f"/v1/key/{key}/projects")
    project = await client.get(f"/v1/key/{key}/projects/{own}")

    assert roles.status_code == 200
    assert {r["system"] for r in roles.json()} >= {"app-user", "manager"}
    assert projects.status_code == 200
    assert other not in {p["id"] for p in projects.json()}
    # Like ODK Central, the app-user role reaches forms, not the project record itself.
    assert problem(project) == (403, 403.1)


def xform(form_id: str) -> bytes:
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>{form_id}</h:title>
    <model>
      <instance><data id="{form_id}"><q/></data></instance><bind nodeset="/data/q" type="string"/>
    </model>
  </h:head>
  <h:body><input ref="/data/q"><label>Q</label></input></h:body>
</h:html>""".encode()


async def test_an_app_user_key_reaches_exactly_the_forms_it_is_assigned(
    client: httpx.AsyncClient, admin: Person
) -> None:
    project = await create_project(client, admin, "Field")
    for form_id in ("assigned", "other"):
        uploaded = await client.post(
            f"/v1/projects/{project}/forms",
            content=xform(form_id),
            params={"publish": "true"},
            headers={**admin.auth, "Content-Type": "application/xml"},
        )
        assert uploaded.status_code == 200, uploaded.text
    app_user = await create_app_user(client, admin, project)
    granted = await client.post(
        f"/v1/projects/{project}/forms/assigned/assignments/app-user/{app_user['id']}", headers=admin.auth
    )
    assert granted.status_code == 200
    key = app_user["token"]

    assigned = await client.get(f"/v1/key/{key}/projects/{project}/forms/assigned.xml")
    other = await client.get(f"/v1/key/{key}/projects/{project}/forms/other.xml")

    assert assigned.status_code == 200
    assert assigned.content == xform("assigned")
    assert problem(other) == (403, 403.1)


async def test_a_bad_key_is_403_1_not_401(client: httpx.AsyncClient) -> None:
    keys = {"unknown": "x" * 64, "short": "short", "overlong": "y" * 300}

    outcomes = {label: problem(await client.get(f"/v1/key/{key}/roles")) for label, key in keys.items()}

    assert outcomes == dict.fromkeys(keys, (403, 403.1))


async def test_a_web_users_session_token_is_not_a_key(client: httpx.AsyncClient, admin: Person) -> None:
    as_key = await client.get(f"/v1/key/{admin.token}/users")
    as_bearer = await client.get("/v1/users", headers=admin.auth)

    assert problem(as_key) == (403, 403.1)
    assert as_bearer.status_code == 200


async def test_a_deleted_app_users_key_stops_working(client: httpx.AsyncClient, admin: Person) -> None:
    project = await create_project(client, admin, "Field")
    app_user = await create_app_user(client, admin, project)
    assert (await client.get(f"/v1/key/{app_user['token']}/roles")).status_code == 200

    deleted = await client.delete(f"/v1/projects/{project}/app-users/{app_user['id']}", headers=admin.auth)

    assert deleted.status_code == 200
    assert problem(await client.get(f"/v1/key/{app_user['token']}/roles")) == (403, 403.1)


# -- cookies and CSRF --------------------------------------------------------------------


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"__Host-session={token}"}


async def logged_in(client: httpx.AsyncClient, container: Container) -> tuple[dict[str, Any], int]:
    """A fresh session and the id of its user."""
    email = await user_without_session(container)
    session = (await login(client, email)).json()
    me = (await client.get("/v1/users/current", headers=bearer(session["token"]))).json()
    return session, me["id"]


async def test_a_session_cookie_authenticates_safe_requests(
    client: httpx.AsyncClient, container: Container
) -> None:
    session, user_id = await logged_in(client, container)

    response = await client.get("/v1/users/current", headers=cookie(session["token"]))

    assert response.status_code == 200
    assert response.json()["id"] == user_id


async def test_a_cookie_authenticated_change_without_the_csrf_token_is_403_2(
    client: httpx.AsyncClient, container: Container
) -> None:
    session, user_id = await logged_in(client, container)
    attempts = {"missing": {}, "empty": {"X-CSRF-Token": ""}, "wrong": {"X-CSRF-Token": "not-the-csrf"}}

    outcomes = {
        label: problem(
            await client.patch(
                f"/v1/users/{user_id}",
                json={"displayName": "Forged"},
                headers=cookie(session["token"]) | csrf,
            )
        )
        for label, csrf in attempts.items()
    }

    assert outcomes == dict.fromkeys(attempts, (403, 403.2))
    me = (await client.get("/v1/users/current", headers=bearer(session["token"]))).json()
    assert me["displayName"] != "Forged"


async def test_a_cookie_authenticated_change_with_the_csrf_header_goes_through(
    client: httpx.AsyncClient, container: Container
) -> None:
    session, user_id = await logged_in(client, container)
    headers = cookie(session["token"]) | {"X-CSRF-Token": session["csrf"]}

    response = await client.patch(f"/v1/users/{user_id}", json={"displayName": "Renamed"}, headers=headers)

    assert response.status_code == 200
    assert response.json()["displayName"] == "Renamed"


async def test_a_form_post_may_carry_the_csrf_token_as_a_field(
    client: httpx.AsyncClient, container: Container
) -> None:
    session, _ = await logged_in(client, container)

    response = await client.request(
        "DELETE", "/v1/sessions/current", data={"__csrf": session["csrf"]}, headers=cookie(session["token"])
    )

    assert response.status_code == 200
    assert problem(await client.get("/v1/users/current", headers=bearer(session["token"]))) == (401, 401.2)


async def test_another_sessions_csrf_token_does_not_count(
    client: httpx.AsyncClient, container: Container
) -> None:
    session, user_id = await logged_in(client, container)
    me = (await client.get("/v1/users/current", headers=bearer(session["token"]))).json()
    other = (await login(client, me["email"])).json()
    headers = cookie(session["token"]) | {"X-CSRF-Token": other["csrf"]}

    response = await client.patch(f"/v1/users/{user_id}", json={"displayName": "Forged"}, headers=headers)

    assert problem(response) == (403, 403.2)


# -- login throttling --------------------------------------------------------------------


async def test_five_failed_logins_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)
    failures = [problem(await login(client, email, f"wrong password {n}")) for n in range(5)]

    locked = await login(client, email)
    by_basic = await client.get("/v1/users/current", headers=basic(email, PASSWORD))

    assert failures == [(401, 401.2)] * 5
    assert problem(locked) == (429, 429.1)
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= 5 * 60 + 1
    assert locked.json()["details"]["retryAfter"] == retry_after
    assert problem(by_basic) == (429, 429.1)


async def test_concurrent_guesses_cannot_outrun_the_account_limit(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)

    guesses = await asyncio.gather(*(login(client, email, f"wrong password {n}") for n in range(15)))

    outcomes = sorted(problem(r) for r in guesses)
    assert outcomes.count((401, 401.2)) <= 5
    assert outcomes.count((429, 429.1)) >= 10
    assert problem(await login(client, email)) == (429, 429.1)


async def test_the_account_lock_ignores_the_case_of_the_email_and_spares_other_accounts(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)
    bystander = await user_without_session(container, "bystander@example.org")
    for n in range(5):
        await login(client, email.upper(), f"wrong password {n}")

    assert problem(await login(client, email)) == (429, 429.1)
    assert (await login(client, bystander)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"login_limit_per_ip": "3/minute"}])
async def test_failed_logins_from_one_address_are_limited_across_accounts(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = await user_without_session(container)
    for n in range(3):
        assert problem(await login(client, f"guess{n}@example.org")) == (401, 401.2)

    blocked = await login(client, email)

    assert problem(blocked) == (429, 429.1)
    assert int(blocked.headers["Retry-After"]) > 0
    async with client_at(container, "10.0.0.2") as elsewhere:
        assert (await login(elsewhere, email)).status_code == 200


# -- passwords ---------------------------------------------------------------------------


async def test_a_weak_password_is_refused_with_400_21(client: httpx.AsyncClient, admin: Person) -> None:
    weak = {
        "short": "short",
        "nine characters": "123456789",
        "the email": "someone@example.org",
        "the email, other case and spaces": " SomeOne@Example.org ",
    }

    responses = {
        label: await client.post(
            "/v1/users", json={"email": "someone@example.org", "password": password}, headers=admin.auth
        )
        for label, password in weak.items()
    }

    assert {label: problem(r) for label, r in responses.items()} == dict.fromkeys(weak, (400, 400.21))
    assert all(r.json()["details"]["reasons"] for r in responses.values())
    assert (await client.get("/v1/users", headers=admin.auth, params={"q": "someone"})).json() == []


async def test_a_password_of_exactly_ten_characters_is_accepted(
    client: httpx.AsyncClient, admin: Person
) -> None:
    response = await client.post(
        "/v1/users", json={"email": "ten@example.org", "password": "0123456789"}, headers=admin.auth
    )

    assert response.status_code == 200
    assert (await login(client, "ten@example.org", "0123456789")).status_code == 200


async def test_changing_to_a_weak_password_is_refused_and_keeps_the_old_one(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user()

    response = await client.put(
        f"/v1/users/{person.id}/password", json={"old": PASSWORD, "new": "short"}, headers=person.auth
    )

    assert problem(response) == (400, 400.21)
    assert (await login(client, person.email)).status_code == 200


async def test_changing_the_password_needs_the_correct_old_one(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user()
    other_session = (await login(client, person.email)).json()["token"]

    response = await client.put(
        f"/v1/users/{person.id}/password",
        json={"old": "not my old password", "new": NEW_PASSWORD},
        headers=person.auth,
    )

    assert problem(response) == (401, 401.2)
    assert (await login(client, person.email)).status_code == 200
    assert problem(await login(client, person.email, NEW_PASSWORD)) == (401, 401.2)
    assert (await client.get("/v1/users/current", headers=bearer(other_session))).status_code == 200


async def test_changing_the_password_ends_the_users_other_sessions_only(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    person = await make_user()
    other_session = (await login(client, person.email)).json()["token"]

    response = await client.put(
        f"/v1/users/{person.id}/password", json={"old": PASSWORD, "new": NEW_PASSWORD}, headers=person.auth
    )

    assert response.json() == {"success": True}
    assert problem(await client.get("/v1/users/current", headers=bearer(other_session))) == (401, 401.2)
    assert (await client.get("/v1/users/current", headers=person.auth)).status_code == 200
    assert problem(await login(client, person.email)) == (401, 401.2)
    assert (await login(client, person.email, NEW_PASSWORD)).status_code == 200


async def test_a_user_cannot_change_someone_elses_password(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    victim, intruder = await make_user(), await make_user()

    response = await client.put(
        f"/v1/users/{victim.id}/password", json={"old": PASSWORD, "new": NEW_PASSWORD}, headers=intruder.auth
    )

    assert problem(response) == (403, 403.1)
    assert (await login(client, victim.email)).status_code == 200


# -- deleted users -----------------------------------------------------------------------


async def test_a_deleted_users_session_and_cached_basic_credentials_stop_working(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    person = await make_user()
    assert (await client.get("/v1/users/current", headers=basic(person.email, PASSWORD))).status_code == 200

    deleted = await client.delete(f"/v1/users/{person.id}", headers=admin.auth)

    assert deleted.status_code == 200
    assert problem(await client.get("/v1/users/current", headers=person.auth)) == (401, 401.2)
    by_basic = await client.get("/v1/users/current", headers=basic(person.email, PASSWORD))
    assert problem(by_basic) == (401, 401.2)
    assert problem(await login(client, person.email)) == (401, 401.2)


async def test_password_hashes_use_the_configured_cost_and_are_upgraded_on_login(
    client: httpx.AsyncClient, container: Container, make_user: MakeUser
) -> None:
    person = await make_user()
    query = text("SELECT password_hash FROM users.actors WHERE id = :id")
    async with container.db.read() as conn:
        made = (await conn.execute(query, {"id": person.id})).scalar_one()
    assert made.startswith("$argon2id$v=19$m=1024,t=1,")  # the test settings' cost

    # A hash from before an operator changed the cost still verifies, and a good login
    # replaces it with one at the configured cost; a failed login changes nothing.
    older = PasswordHasher(time_cost=2, memory_cost=2048).hash(PASSWORD)
    async with container.db.transaction() as conn:
        await conn.execute(
            text("UPDATE users.actors SET password_hash = :h WHERE id = :id"), {"h": older, "id": person.id}
        )
    wrong = await client.post("/v1/sessions", json={"email": person.email, "password": "not the password"})
    assert wrong.status_code == 401
    async with container.db.read() as conn:
        assert (await conn.execute(query, {"id": person.id})).scalar_one() == older
    good = await client.post("/v1/sessions", json={"email": person.email, "password": PASSWORD})
    assert good.status_code == 200
    async with container.db.read() as conn:
        upgraded = (await conn.execute(query, {"id": person.id})).scalar_one()
    assert upgraded != older and upgraded.startswith("$argon2id$v=19$m=1024,t=1,")
    assert credentials.verify_password(upgraded, PASSWORD)
