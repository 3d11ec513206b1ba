"""The user documentation in docs/ stays true to the code.

Each test compares one catalogue in the code with the table that documents it: problem codes
(docs/errors.md), settings (docs/configuration.md), routes (docs/api.md), roles and verbs
(docs/roles.md). Nothing here needs a database: building the app does no I/O.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from odk_mcp.gateway import create_app
from odk_mcp.kernel.problems import CATALOGUE
from odk_mcp.services.users.domain import roles
from odk_mcp.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"

# FastAPI's own documentation routes: described in prose in docs/api.md, not as endpoints.
FRAMEWORK_PATHS = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect"})
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_PROBLEM_ROW = re.compile(r"^\| (\d{3}\.\d+) \| ([A-Za-z]+) \| (.+?) \|", re.MULTILINE)
_SETTING_ROW = re.compile(r"^\| `(ODK_MCP_[A-Z0-9_]+)` \| ([^|]*) \|", re.MULTILINE)
_ENDPOINT_ROW = re.compile(r"^\| (" + "|".join(HTTP_METHODS) + r") \| `([^`]+)` \|", re.MULTILINE)


def read_doc(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    return path.read_text(encoding="utf-8")


# -- errors -------------------------------------------------------------------------------


def test_every_problem_code_has_a_row_in_errors_md() -> None:
    rows = {code: (name, message) for code, name, message in _PROBLEM_ROW.findall(read_doc("errors.md"))}
    for kind in CATALOGUE.values():
        code = str(kind.code)
        assert code in rows, f"docs/errors.md has no row '| {code} | {kind.name} | {kind.message} | … |'"
        name, message = rows[code]
        assert name == kind.name, f"docs/errors.md names {code} {name!r}, the code says {kind.name!r}"
        assert message == kind.message, f"docs/errors.md: default message of {code} differs from the code"


def test_errors_md_documents_no_unknown_code() -> None:
    known = {str(kind.code) for kind in CATALOGUE.values()}
    documented = [code for code, _, _ in _PROBLEM_ROW.findall(read_doc("errors.md"))]
    assert len(documented) == len(set(documented)), "docs/errors.md lists a code twice"
    unknown = sorted(set(documented) - known)
    assert not unknown, f"docs/errors.md documents codes not in CATALOGUE: {unknown}"


# -- configuration ------------------------------------------------------------------------


def env_name(field: str) -> str:
    prefix = Settings.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def documented_default(value: Any) -> str:
    """How a default is written in the table's default column."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return "empty"
    return str(value)


def test_every_setting_has_a_row_in_configuration_md() -> None:
    rows = dict(_SETTING_ROW.findall(read_doc("configuration.md")))
    for field, info in Settings.model_fields.items():
        name = env_name(field)
        assert name in rows, f"docs/configuration.md has no row starting '| `{name}` |'"
        default = documented_default(info.default)
        assert default in rows[name], (
            f"docs/configuration.md: the default of {name} is {default!r}, the table says {rows[name]!r}"
        )


def test_configuration_md_names_no_unknown_variable() -> None:
    text = read_doc("configuration.md")
    known = {env_name(field) for field in Settings.model_fields}
    mentioned = set(re.findall(r"\bODK_MCP_[A-Z0-9_]*[A-Z0-9]", text))
    assert not mentioned - known, (
        f"docs/configuration.md names unknown variables: {sorted(mentioned - known)}"
    )
    rows = [name for name, _ in _SETTING_ROW.findall(text)]
    assert len(rows) == len(set(rows)), "docs/configuration.md lists a setting twice"


def test_database_url_alias_is_documented() -> None:
    assert "`DATABASE_URL`" in read_doc("configuration.md")
    assert "`DATABASE_URL`" in read_doc("setup.md")


# -- routes -------------------------------------------------------------------------------


def _flatten(routes: Iterable[Any]) -> Iterator[Any]:
    """Routes of the app, descending into included routers (FastAPI keeps them nested)."""
    for route in routes:
        nested = getattr(route, "effective_candidates", None)
        if callable(nested):
            yield from _flatten(nested())
        elif hasattr(route, "path"):
            yield route


@pytest.fixture(scope="module")
def endpoints() -> set[tuple[str, str]]:
    """(method, path) of every route of the app, HEAD left out (Starlette adds it to GETs)."""
    app = create_app(Settings())
    pairs = {
        (method, route.path)
        for route in _flatten(app.routes)
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }
    # The OpenAPI schema lists the same operations; it guards the flattening above. (FastAPI
    # warns about duplicate operation ids for GET+HEAD routes; that is not this test's business.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        schema = app.openapi()
    for path, operations in schema["paths"].items():
        pairs |= {(method.upper(), path) for method in operations if method.upper() in HTTP_METHODS}
    return pairs


def test_routes_were_found(endpoints: set[tuple[str, str]]) -> None:
    paths = {path for _, path in endpoints}
    assert {"/healthz", "/v1/sessions", "/v1/projects"} <= paths


def test_every_route_is_in_api_md(endpoints: set[tuple[str, str]]) -> None:
    text = read_doc("api.md")
    documented = set(_ENDPOINT_ROW.findall(text))
    for method, path in sorted(endpoints):
        if path in FRAMEWORK_PATHS:
            continue
        assert (method, path) in documented, f"docs/api.md has no row '| {method} | `{path}` | … |'"


def test_api_md_mentions_the_openapi_documentation() -> None:
    text = read_doc("api.md")
    assert "`/docs`" in text
    assert "`/openapi.json`" in text


def test_api_md_documents_no_unknown_route(endpoints: set[tuple[str, str]]) -> None:
    documented = set(_ENDPOINT_ROW.findall(read_doc("api.md")))
    unknown = sorted(documented - endpoints)
    assert not unknown, f"docs/api.md documents endpoints the app does not have: {unknown}"


# -- roles --------------------------------------------------------------------------------


def role_row(role: roles.Role) -> str:
    scopes = ", ".join(sorted(role.scopes))
    return f"| {role.id} | `{role.system}` | {role.name} | {scopes} | {len(role.verbs)} |"


def verb_row(verb: str) -> str:
    kind = "site" if verb in roles.SITE_VERBS else "project"
    marks = " | ".join("✓" if verb in role.verbs else "" for role in roles.ROLES)
    return f"| `{verb}` | {kind} | {marks} |"


def test_every_role_is_in_roles_md() -> None:
    lines = set(read_doc("roles.md").splitlines())
    for role in roles.ROLES:
        assert role_row(role) in lines, f"docs/roles.md: expected the row {role_row(role)!r}"


def test_every_verb_is_in_roles_md_with_the_roles_that_grant_it() -> None:
    text = read_doc("roles.md")
    lines = set(text.splitlines())
    header = "| verb | kind | " + " | ".join(f"`{role.system}`" for role in roles.ROLES) + " |"
    assert header in lines, f"docs/roles.md: the verb table's header should be {header!r}"
    for verb in roles.SITE_VERBS + roles.PROJECT_VERBS:
        assert verb_row(verb) in lines, f"docs/roles.md: expected the row {verb_row(verb)!r}"
    documented = set(re.findall(r"^\| `([a-z_]+(?:\.[a-z_]+)+)` \| (?:site|project) \|", text, re.MULTILINE))
    assert documented == set(roles.ALL_VERBS), (
        f"unknown verbs in docs/roles.md: {documented - roles.ALL_VERBS}"
    )
