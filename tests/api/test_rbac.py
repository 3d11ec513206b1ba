"""Role-based access control over HTTP: who may do what, on their own project and on another.

The cast: a sitewide administrator; a manager, a viewer and a data collector (formfill)
assigned on project A; an app user of project A holding the app-user role on a form of A
(as ODK Central sets them up); and an anonymous client. Nobody but the administrator has
a role on project B. The matrix says, per endpoint, who is allowed on project A; on B only
the administrator is. Denied callers get 403.1, anonymous ones 401.1.

The cast is built through the real facades with sessions opened directly (no password
hashing), so a fresh, independent cast costs a few inserts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from odk_mcp.bootstrap import Container
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.users import Scope
from odk_mcp.services.users.accounts import create_session

ACTORS = ("admin", "manager", "viewer", "formfill", "app_user", "anonymous")
PROJECT_ROLES = ("manager", "viewer", "formfill")
FORM_ID = "household"
_serial = itertools.count()

ALLOWED = (200, None)
FORBIDDEN = (403, 403.1)
UNAUTHENTICATED = (401, 401.1)


@dataclass(frozen=True)
class ProjectCast:
    """One project and the actors the endpoints act on within it."""

    id: int
    member: int  # a web user holding `viewer` here (target of unassignment)
    outsider: int  # a web user with no role anywhere (target of assignment)
    app_user: int  # an app user of this project (target of deletion)


@dataclass(frozen=True)
class World:
    a: ProjectCast
    b: ProjectCast
    tokens: dict[str, str]  # actor name -> session token (the app user's is its key)

    def project(self, which: str) -> ProjectCast:
        return self.a if which == "A" else self.b


async def _web_user(container: Container, label: str) -> tuple[int, str]:
    """A web user without a password, with an open session."""
    view = await container.users.accounts.create_user(
        SYSTEM, f"{label}-{next(_serial)}@example.org", None, label.title()
    )
    async with container.db.transaction() as conn:
        session = await create_session(conn, view.id, ttl=None)
    return view.id, session.token


async def _project(container: Container, name: str) -> ProjectCast:
    project = await container.forms.projects.create(SYSTEM, name, None)
    member, _ = await _web_user(container, "member")
    outsider, _ = await _web_user(container, "outsider")
    await container.users.assignments.assign(SYSTEM, Scope(project.id), "viewer", member)
    app_user = await container.users.app_users.create(SYSTEM, project.id, "Tablet")
    return ProjectCast(id=project.id, member=member, outsider=outsider, app_user=app_user.id)


async def build_world(container: Container) -> World:
    a = await _project(container, "Project A")
    b = await _project(container, "Project B")
    tokens: dict[str, str] = {}
    admin_id, tokens["admin"] = await _web_user(container, "admin")
    await container.users.assignments.assign(SYSTEM, Scope(), "admin", admin_id)
    for role in PROJECT_ROLES:
        actor_id, tokens[role] = await _web_user(container, role)
        await container.users.assignments.assign(SYSTEM, Scope(a.id), role, actor_id)
    # The app user of A, holding the app-user role on a form of A (no form upload yet:
    # the form row goes into the catalogue directly).
    async with container.db.transaction() as conn:
        await conn.execute(
            text("INSERT INTO forms.forms (project_id, xml_form_id) VALUES (:p, :f)"),
            {"p": a.id, "f": FORM_ID},
        )
    app_user = await container.users.app_users.create(SYSTEM, a.id, "Collector tablet")
    assert app_user.token is not None
    tokens["app_user"] = app_user.token
    await container.users.assignments.assign(SYSTEM, Scope(a.id, FORM_ID), "app-user", app_user.id)
    return World(a=a, b=b, tokens=tokens)


async def call(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    """Send a request as `who`: a bearer token, the app user's key prefix, or nothing."""
    headers: dict[str, str] = {}
    if who == "app_user":
        path = f"/v1/key/{world.tokens['app_user']}" + path.removeprefix("/v1")
    elif who != "anonymous":
        headers["Authorization"] = f"Bearer {world.tokens[who]}"
    return await client.request(method, path, json=body, headers=headers)


def outcome(response: httpx.Response) -> tuple[int, float | None]:
    if response.status_code < 400:
        return response.status_code, None
    return response.status_code, response.json().get("code")


def expected_outcome(who: str, allowed: frozenset[str]) -> tuple[int, float | None]:
    if who in allowed:
        return ALLOWED
    return UNAUTHENTICATED if who == "anonymous" else FORBIDDEN


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # placeholders: {p} project, {member}, {outsider}, {app_user} of that project
    allowed_on_a: frozenset[str]
    body: dict[str, Any] | None = None
    # Once it succeeds, the next caller would find a different world (the project gone,
    # the role already held), so a fresh cast is built after each success.
    consumes: bool = False


def allow(*who: str) -> frozenset[str]:
    return frozenset(who)


MANAGERS = allow("admin", "manager")
PROJECT_MEMBERS = allow("admin", "manager", "viewer", "formfill")
ADMIN_ONLY = allow("admin")

# Who may call each endpoint on project A; on project B only the administrator may.
# fmt: off
PROJECT_ENDPOINTS = [
    Endpoint("GET",    "/v1/projects/{p}",                               PROJECT_MEMBERS),
    Endpoint("PATCH",  "/v1/projects/{p}",                               MANAGERS, {"name": "Renamed"}),
    Endpoint("DELETE", "/v1/projects/{p}",                               MANAGERS, consumes=True),
    Endpoint("GET",    "/v1/projects/{p}/app-users",                     MANAGERS),
    Endpoint("POST",   "/v1/projects/{p}/app-users",                     MANAGERS, {"displayName": "Tablet"}),
    Endpoint("DELETE", "/v1/projects/{p}/app-users/{app_user}",          MANAGERS, consumes=True),
    Endpoint("GET",    "/v1/projects/{p}/assignments",                   MANAGERS),
    Endpoint("GET",    "/v1/projects/{p}/assignments/viewer",            MANAGERS),
    Endpoint("POST",   "/v1/projects/{p}/assignments/viewer/{outsider}", MANAGERS, consumes=True),
    Endpoint("DELETE", "/v1/projects/{p}/assignments/viewer/{member}",   MANAGERS, consumes=True),
]

SITE_ENDPOINTS = [
    Endpoint("GET",    "/v1/users",                         ADMIN_ONLY),
    Endpoint("POST",   "/v1/users",                         ADMIN_ONLY, {"email": "new@example.org"}),
    Endpoint("GET",    "/v1/users/{member}",                ADMIN_ONLY),
    Endpoint("GET",    "/v1/audits",                        ADMIN_ONLY),
    Endpoint("POST",   "/v1/projects",                      ADMIN_ONLY, {"name": "New project"}),
    Endpoint("GET",    "/v1/assignments",                   ADMIN_ONLY),
    Endpoint("POST",   "/v1/assignments/admin/{outsider}",  ADMIN_ONLY, consumes=True),
]
# fmt: on

MATRIX = [
    pytest.param(
        endpoint,
        which,
        endpoint.allowed_on_a if which == "A" else ADMIN_ONLY,
        id=f"{endpoint.method} {endpoint.path} in {which}",
    )
    for endpoint in PROJECT_ENDPOINTS
    for which in ("A", "B")
] + [
    pytest.param(endpoint, "A", endpoint.allowed_on_a, id=f"{endpoint.method} {endpoint.path}")
    for endpoint in SITE_ENDPOINTS
]


@pytest.mark.parametrize(("endpoint", "which", "allowed"), MATRIX)
async def test_each_role_is_allowed_or_denied_per_the_matrix(
    client: httpx.AsyncClient,
    container: Container,
    endpoint: Endpoint,
    which: str,
    allowed: frozenset[str],
) -> None:
    observed: dict[str, tuple[int, float | None]] = {}
    world: World | None = None
    for who in ACTORS:
        if world is None:
            world = await build_world(container)
        cast = world.project(which)
        path = endpoint.path.format(
            p=cast.id, member=cast.member, outsider=cast.outsider, app_user=cast.app_user
        )
        response = await call(client, world, who, endpoint.method, path, endpoint.body)
        observed[who] = outcome(response)
        if endpoint.consumes and response.is_success:
            world = None  # the next caller must find the target as it was

    assert observed == {who: expected_outcome(who, allowed) for who in ACTORS}


async def test_project_listing_shows_only_projects_the_caller_has_a_role_on(
    client: httpx.AsyncClient, container: Container
) -> None:
    world = await build_world(container)

    listed = {}
    for who in ACTORS:
        response = await call(client, world, who, "GET", "/v1/projects")
        listed[who] = {p["id"] for p in response.json()} if response.status_code == 200 else outcome(response)

    assert listed["admin"] == {world.a.id, world.b.id}
    for role in PROJECT_ROLES:
        assert listed[role] == {world.a.id}, role
    assert isinstance(listed["app_user"], set)
    assert world.b.id not in listed["app_user"]
    assert listed["anonymous"] == UNAUTHENTICATED


async def test_a_manager_of_project_a_can_do_nothing_in_project_b(
    client: httpx.AsyncClient, container: Container
) -> None:
    world = await build_world(container)
    b = world.b
    attempts = [
        ("GET", f"/v1/projects/{b.id}", None),
        ("PATCH", f"/v1/projects/{b.id}", {"name": "Taken over", "archived": True}),
        ("DELETE", f"/v1/projects/{b.id}", None),
        ("GET", f"/v1/projects/{b.id}/app-users", None),
        ("POST", f"/v1/projects/{b.id}/app-users", {"displayName": "Intruder"}),
        ("DELETE", f"/v1/projects/{b.id}/app-users/{b.app_user}", None),
        ("GET", f"/v1/projects/{b.id}/assignments", None),
        ("GET", f"/v1/projects/{b.id}/assignments/manager", None),
        ("POST", f"/v1/projects/{b.id}/assignments/manager/{b.outsider}", None),
        ("DELETE", f"/v1/projects/{b.id}/assignments/viewer/{b.member}", None),
    ]

    outcomes = [outcome(await call(client, world, "manager", m, path, body)) for m, path, body in attempts]

    assert outcomes == [FORBIDDEN] * len(attempts)
    project = (await call(client, world, "admin", "GET", f"/v1/projects/{b.id}")).json()
    assert (project["name"], project["archived"]) == ("Project B", False)
    app_users = (await call(client, world, "admin", "GET", f"/v1/projects/{b.id}/app-users")).json()
    assert [u["id"] for u in app_users] == [b.app_user]
    assignments = (await call(client, world, "admin", "GET", f"/v1/projects/{b.id}/assignments")).json()
    assert assignments == [{"actorId": b.member, "roleId": 4}]


async def test_a_manager_cannot_make_anyone_an_administrator(
    client: httpx.AsyncClient, container: Container
) -> None:
    world = await build_world(container)
    a = world.a

    sitewide = await call(client, world, "manager", "POST", f"/v1/assignments/admin/{a.outsider}")
    on_project = await call(
        client, world, "manager", "POST", f"/v1/projects/{a.id}/assignments/admin/{a.outsider}"
    )

    assert outcome(sitewide) == FORBIDDEN
    assert outcome(on_project) == (400, 400.8)  # the admin role exists only sitewide
    admins = (await call(client, world, "admin", "GET", "/v1/assignments/admin")).json()
    assert a.outsider not in [u["id"] for u in admins]


async def test_a_manager_grants_and_revokes_roles_on_their_project_with_immediate_effect(
    client: httpx.AsyncClient, container: Container
) -> None:
    world = await build_world(container)
    a = world.a
    async with container.db.transaction() as conn:
        session = await create_session(conn, a.outsider, ttl=None)
    outsider = {"Authorization": f"Bearer {session.token}"}
    assert outcome(await client.get(f"/v1/projects/{a.id}", headers=outsider)) == FORBIDDEN

    granted = await call(
        client, world, "manager", "POST", f"/v1/projects/{a.id}/assignments/viewer/{a.outsider}"
    )
    assert outcome(granted) == ALLOWED
    assert (await client.get(f"/v1/projects/{a.id}", headers=outsider)).status_code == 200

    revoked = await call(
        client, world, "manager", "DELETE", f"/v1/projects/{a.id}/assignments/viewer/{a.outsider}"
    )
    assert outcome(revoked) == ALLOWED
    assert outcome(await client.get(f"/v1/projects/{a.id}", headers=outsider)) == FORBIDDEN


async def test_the_form_level_app_user_role_confers_nothing_on_the_project(
    client: httpx.AsyncClient, container: Container
) -> None:
    world = await build_world(container)
    a = world.a

    outcomes = [
        outcome(await call(client, world, "app_user", "GET", f"/v1/projects/{a.id}")),
        outcome(
            await call(client, world, "app_user", "GET", f"/v1/projects/{a.id}/forms/{FORM_ID}/assignments")
        ),
        outcome(await call(client, world, "app_user", "GET", f"/v1/projects/{a.id}/app-users")),
    ]

    assert outcomes == [FORBIDDEN] * 3


async def test_roles_are_public_to_any_authenticated_caller_and_looked_up_by_id_or_name(
    client: httpx.AsyncClient, container: Container
) -> None:
    world = await build_world(container)

    by_name = await call(client, world, "formfill", "GET", "/v1/roles/manager")
    by_id = await call(client, world, "app_user", "GET", "/v1/roles/3")
    anonymous = await call(client, world, "anonymous", "GET", "/v1/roles")

    assert by_name.status_code == 200
    assert by_name.json() == by_id.json()
    assert by_name.json()["system"] == "manager"
    assert "project.delete" in by_name.json()["verbs"]
    assert outcome(anonymous) == UNAUTHENTICATED


@pytest.mark.parametrize(
    "key", ["99", "nobody", "%C2%B2", "9" * 5000], ids=["id", "name", "superscript", "huge"]
)
async def test_an_unknown_role_is_404_whatever_the_key_looks_like(
    client: httpx.AsyncClient, container: Container, key: str
) -> None:
    world = await build_world(container)

    read = await call(client, world, "admin", "GET", f"/v1/roles/{key}")
    assign = await call(
        client, world, "admin", "POST", f"/v1/projects/{world.a.id}/assignments/{key}/{world.a.outsider}"
    )

    assert outcome(read) == (404, 404.1)
    assert outcome(assign) == (404, 404.1)
