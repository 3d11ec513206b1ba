"""The pure authorization rule: which grants confer which verbs on which scope."""

from __future__ import annotations

import pytest

from odk_mcp.kernel.actor import Grant
from odk_mcp.services.users.domain import roles
from odk_mcp.services.users.domain.roles import (
    ADMIN,
    ALL_VERBS,
    APP_USER,
    FORMFILL,
    MANAGER,
    PROJECT_VERBS,
    PUBLIC_LINK,
    ROLES,
    SITE_VERBS,
    VIEWER,
    allows,
    find_role,
    projects_with,
    verbs_on,
)

SITEWIDE_ADMIN = Grant(role_id=ADMIN.id)
MANAGER_OF_7 = Grant(role_id=MANAGER.id, project_id=7)
VIEWER_OF_8 = Grant(role_id=VIEWER.id, project_id=8)
FORMFILL_OF_9 = Grant(role_id=FORMFILL.id, project_id=9)
APP_USER_ON_SURVEY = Grant(role_id=APP_USER.id, project_id=7, form_id="survey")
UNKNOWN_ROLE_ON_7 = Grant(role_id=999, project_id=7)
UNKNOWN_SITEWIDE = Grant(role_id=999)


# -- the catalogue -----------------------------------------------------------------------


def test_role_ids_and_names_are_those_odk_central_clients_expect() -> None:
    assert {r.system: r.id for r in ROLES} == {
        "admin": 1,
        "app-user": 2,
        "manager": 3,
        "viewer": 4,
        "formfill": 5,
        "pub-link": 6,
    }


def test_every_role_grants_only_known_verbs_and_the_admin_grants_all() -> None:
    for role in ROLES:
        assert role.verbs <= ALL_VERBS, role.system
    assert ADMIN.verbs == ALL_VERBS
    assert set(SITE_VERBS).isdisjoint(PROJECT_VERBS)


def test_only_the_sitewide_admin_role_holds_site_verbs() -> None:
    for role in ROLES:
        if role is not ADMIN:
            assert role.verbs.isdisjoint(SITE_VERBS), role.system
    assert ADMIN.scopes == {"site"}


def test_project_roles_are_nested_viewer_and_data_collector_within_manager() -> None:
    assert VIEWER.verbs < MANAGER.verbs
    assert FORMFILL.verbs < MANAGER.verbs
    assert "submission.create" not in VIEWER.verbs
    assert "submission.read" not in FORMFILL.verbs


def test_device_roles_are_form_scoped_and_reach_no_project_record() -> None:
    for role in (APP_USER, PUBLIC_LINK):
        assert role.scopes == {"form"}
        assert "submission.create" in role.verbs
        assert not any(verb.startswith(("project.", "assignment.", "field_key.")) for verb in role.verbs)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (3, MANAGER),
        ("3", MANAGER),
        ("manager", MANAGER),
        ("app-user", APP_USER),
        ("0003", MANAGER),
        (42, None),
        ("42", None),
        ("Manager", None),
        ("", None),
        ("-1", None),
        ("²", None),
        ("٣", None),  # ARABIC-INDIC DIGIT THREE: a digit, but not an id
        ("9" * 5000, None),
    ],
    ids=repr,
)
def test_find_role_by_id_or_system_name(key: str | int, expected: roles.Role | None) -> None:
    assert find_role(key) is expected


# -- allows ------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", sorted(ALL_VERBS))
def test_a_sitewide_admin_may_do_everything_everywhere(verb: str) -> None:
    assert allows([SITEWIDE_ADMIN], verb)
    assert allows([SITEWIDE_ADMIN], verb, project_id=123)
    assert allows([SITEWIDE_ADMIN], verb, project_id=123, form_id="any")


def test_a_project_grant_applies_to_the_project_and_each_of_its_forms() -> None:
    assert allows([MANAGER_OF_7], "project.update", project_id=7)
    assert allows([MANAGER_OF_7], "form.update", project_id=7, form_id="survey")
    assert allows([MANAGER_OF_7], "form.update", project_id=7, form_id="another")


def test_a_project_grant_confers_nothing_on_another_project() -> None:
    assert not allows([MANAGER_OF_7], "project.read", project_id=8)
    assert not allows([MANAGER_OF_7], "form.read", project_id=8, form_id="survey")


def test_a_project_grant_confers_nothing_sitewide() -> None:
    assert not allows([MANAGER_OF_7], "project.read")
    assert not allows([MANAGER_OF_7], "user.create")
    assert not allows([MANAGER_OF_7], "user.create", project_id=7)
    assert not allows([MANAGER_OF_7], "project.create", project_id=7)


PROJECT_GRANTS = {"manager": MANAGER_OF_7, "viewer": VIEWER_OF_8, "formfill": FORMFILL_OF_9}


@pytest.mark.parametrize(
    ("role", "verb", "expected"),
    [
        ("viewer", "project.read", True),
        ("viewer", "submission.list", True),
        ("viewer", "project.update", False),
        ("viewer", "submission.create", False),
        ("viewer", "assignment.list", False),
        ("formfill", "project.read", True),
        ("formfill", "submission.create", True),
        ("formfill", "submission.read", False),
        ("formfill", "field_key.list", False),
        ("manager", "project.delete", True),
        ("manager", "assignment.create", True),
        ("manager", "field_key.create", True),
    ],
)
def test_project_roles_confer_their_own_verbs_only(role: str, verb: str, expected: bool) -> None:
    grant = PROJECT_GRANTS[role]

    assert allows([grant], verb, project_id=grant.project_id) is expected


def test_a_form_grant_applies_to_that_form_only() -> None:
    assert allows([APP_USER_ON_SURVEY], "submission.create", project_id=7, form_id="survey")
    assert not allows([APP_USER_ON_SURVEY], "submission.create", project_id=7, form_id="other")
    assert not allows([APP_USER_ON_SURVEY], "submission.create", project_id=8, form_id="survey")


def test_a_form_grant_confers_nothing_on_its_project_or_sitewide() -> None:
    for verb in APP_USER.verbs:
        assert not allows([APP_USER_ON_SURVEY], verb, project_id=7)
        assert not allows([APP_USER_ON_SURVEY], verb)
    assert not allows([APP_USER_ON_SURVEY], "project.read", project_id=7)


def test_a_form_grant_does_not_widen_beyond_its_role() -> None:
    assert not allows([APP_USER_ON_SURVEY], "submission.read", project_id=7, form_id="survey")
    assert not allows([APP_USER_ON_SURVEY], "form.update", project_id=7, form_id="survey")


def test_grants_with_an_unknown_role_confer_nothing_and_do_not_fail() -> None:
    for verb in ("project.read", "user.create", "submission.create"):
        assert not allows([UNKNOWN_ROLE_ON_7, UNKNOWN_SITEWIDE], verb)
        assert not allows([UNKNOWN_ROLE_ON_7, UNKNOWN_SITEWIDE], verb, project_id=7)
    assert allows([UNKNOWN_SITEWIDE, VIEWER_OF_8], "project.read", project_id=8)


def test_no_grants_allow_nothing() -> None:
    assert not allows([], "project.read", project_id=1)
    assert not allows((), "user.list")


def test_unknown_verbs_are_never_allowed_even_to_the_admin() -> None:
    assert not allows([SITEWIDE_ADMIN], "project.take_over")
    assert not allows([SITEWIDE_ADMIN], "")


def test_allows_accepts_any_iterable_of_grants() -> None:
    assert allows(iter([VIEWER_OF_8]), "project.read", project_id=8)


# -- verbs_on ----------------------------------------------------------------------------


def test_verbs_on_a_scope_are_the_union_of_the_grants_that_apply_there() -> None:
    grants = [MANAGER_OF_7, VIEWER_OF_8, APP_USER_ON_SURVEY]

    assert verbs_on(grants, project_id=7) == set(MANAGER.verbs)
    assert verbs_on(grants, project_id=7, form_id="survey") == set(MANAGER.verbs | APP_USER.verbs)
    assert verbs_on(grants, project_id=8) == set(VIEWER.verbs)
    assert verbs_on(grants, project_id=9) == set()


def test_sitewide_verbs_come_only_from_sitewide_grants() -> None:
    assert verbs_on([MANAGER_OF_7, APP_USER_ON_SURVEY]) == set()
    assert verbs_on([SITEWIDE_ADMIN, MANAGER_OF_7]) == set(ALL_VERBS)
    assert verbs_on([SITEWIDE_ADMIN], project_id=5, form_id="x") == set(ALL_VERBS)


def test_verbs_on_ignores_unknown_roles() -> None:
    assert verbs_on([UNKNOWN_ROLE_ON_7, UNKNOWN_SITEWIDE], project_id=7) == set()


def test_verbs_on_returns_a_fresh_set_each_time() -> None:
    first = verbs_on([VIEWER_OF_8], project_id=8)
    first.add("project.delete")
    assert "project.delete" not in verbs_on([VIEWER_OF_8], project_id=8)
    assert "project.delete" not in VIEWER.verbs


# -- projects_with -----------------------------------------------------------------------


def test_a_sitewide_grant_of_the_verb_means_every_project() -> None:
    assert projects_with([SITEWIDE_ADMIN], "project.read") is None
    assert projects_with([MANAGER_OF_7, SITEWIDE_ADMIN], "project.read") is None


def test_projects_with_lists_projects_whose_grants_confer_the_verb() -> None:
    grants = [MANAGER_OF_7, VIEWER_OF_8, FORMFILL_OF_9]

    assert projects_with(grants, "project.read") == {7, 8, 9}
    assert projects_with(grants, "submission.list") == {7, 8}
    assert projects_with(grants, "project.delete") == {7}
    assert projects_with(grants, "user.create") == frozenset()


def test_projects_with_skips_form_grants_and_unknown_roles() -> None:
    assert projects_with([APP_USER_ON_SURVEY], "submission.create") == frozenset()
    assert projects_with([UNKNOWN_ROLE_ON_7, UNKNOWN_SITEWIDE], "project.read") == frozenset()


def test_a_sitewide_grant_without_the_verb_does_not_open_every_project() -> None:
    sitewide_unknown_then_viewer = [UNKNOWN_SITEWIDE, VIEWER_OF_8]

    assert projects_with(sitewide_unknown_then_viewer, "project.read") == {8}
