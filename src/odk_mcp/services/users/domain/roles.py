"""The built-in roles, the verbs each grants, and the pure authorization rule.

Roles and their ids follow ODK Central (pyODK hard-codes role id 2 for app users). A grant
held sitewide applies everywhere; on a project, to the project and all of its forms; on a
form, to that form only. Site-level resources (users, roles, audits, creating projects)
need a sitewide grant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from odk_mcp.kernel.actor import Grant

# Verbs on site-level resources: only sitewide grants confer them.
SITE_VERBS: tuple[str, ...] = (
    "config.read",
    "config.set",
    "user.create",
    "user.list",
    "user.read",
    "user.update",
    "user.delete",
    "user.password.invalidate",
    "session.end",
    "role.list",
    "audit.read",
    "project.create",
    "project.list",
)

# Verbs on a project and what lives in it.
PROJECT_VERBS: tuple[str, ...] = (
    "project.read",
    "project.update",
    "project.delete",
    "form.create",
    "form.delete",
    "form.list",
    "form.read",
    "form.update",
    "form.restore",
    "open_form.list",
    "open_form.read",
    "submission.create",
    "submission.read",
    "submission.list",
    "submission.update",
    "submission.delete",
    "submission.restore",
    "field_key.create",
    "field_key.list",
    "field_key.delete",
    "public_link.create",
    "public_link.list",
    "public_link.read",
    "public_link.update",
    "public_link.delete",
    "assignment.list",
    "assignment.create",
    "assignment.delete",
    "dataset.create",
    "dataset.list",
    "dataset.read",
    "dataset.update",
    "entity.create",
    "entity.list",
    "entity.read",
    "entity.update",
    "entity.delete",
    "entity.restore",
    "webhook.list",
    "webhook.create",
    "webhook.read",
    "webhook.update",
    "webhook.delete",
)

ALL_VERBS: frozenset[str] = frozenset(SITE_VERBS + PROJECT_VERBS)

# When roles were defined; fixed, since roles are part of the code, not data.
ROLES_CREATED_AT = datetime(2026, 11, 26, tzinfo=UTC)


@dataclass(frozen=True)
class Role:
    id: int
    system: str
    name: str
    verbs: frozenset[str]
    # Scopes a role may be assigned on: "site", "project", "form".
    scopes: frozenset[str]


ADMIN = Role(1, "admin", "Administrator", ALL_VERBS, frozenset({"site"}))
# Data collectors, app users and public links use the open_form.* verbs: they reach only
# forms in the "open" state, and closed forms disappear for them.
APP_USER = Role(
    2,
    "app-user",
    "App User",
    frozenset({"open_form.list", "open_form.read", "submission.create"}),
    frozenset({"form"}),
)
MANAGER = Role(
    3,
    "manager",
    "Project Manager",
    frozenset(PROJECT_VERBS),
    frozenset({"project"}),
)
VIEWER = Role(
    4,
    "viewer",
    "Project Viewer",
    frozenset(
        {
            "project.read",
            "form.list",
            "form.read",
            "submission.read",
            "submission.list",
            "dataset.list",
            "dataset.read",
            "entity.list",
            "entity.read",
        }
    ),
    frozenset({"project"}),
)
FORMFILL = Role(
    5,
    "formfill",
    "Data Collector",
    frozenset({"project.read", "open_form.list", "open_form.read", "submission.create"}),
    frozenset({"project"}),
)
PUBLIC_LINK = Role(
    6,
    "pub-link",
    "Public Link",
    frozenset({"open_form.read", "submission.create"}),
    frozenset({"form"}),
)

ROLES: tuple[Role, ...] = (ADMIN, APP_USER, MANAGER, VIEWER, FORMFILL, PUBLIC_LINK)
_BY_ID = {role.id: role for role in ROLES}
_BY_SYSTEM = {role.system: role for role in ROLES}


def find_role(key: str | int) -> Role | None:
    """A role by numeric id or system name (`/v1/roles/{id|system}`)."""
    if isinstance(key, int):
        return _BY_ID.get(key)
    # ASCII digits only, and few of them: str.isdigit() also accepts "²" and other digits
    # int() refuses, and int() refuses strings over 4300 digits long.
    if key.isascii() and key.isdigit():
        return _BY_ID.get(int(key)) if len(key) <= 9 else None
    return _BY_SYSTEM.get(key)


def _applies(grant: Grant, project_id: int | None, form_id: str | None) -> bool:
    if grant.sitewide:
        return True
    if project_id is None or grant.project_id != project_id:
        return False
    return grant.form_id is None or grant.form_id == form_id


def allows(
    grants: Iterable[Grant], verb: str, project_id: int | None = None, form_id: str | None = None
) -> bool:
    """Whether any grant confers `verb` on the scope (sitewide when project_id is None)."""
    for grant in grants:
        role = _BY_ID.get(grant.role_id)
        if role is not None and verb in role.verbs and _applies(grant, project_id, form_id):
            return True
    return False


def verbs_on(grants: Iterable[Grant], project_id: int | None = None, form_id: str | None = None) -> set[str]:
    """Every verb the grants confer on the scope."""
    verbs: set[str] = set()
    for grant in grants:
        role = _BY_ID.get(grant.role_id)
        if role is not None and _applies(grant, project_id, form_id):
            verbs |= role.verbs
    return verbs


def projects_with(grants: Iterable[Grant], verb: str) -> frozenset[int] | None:
    """Projects where some grant confers `verb`; None when a sitewide grant confers it."""
    projects: set[int] = set()
    for grant in grants:
        role = _BY_ID.get(grant.role_id)
        if role is None or verb not in role.verbs:
            continue
        if grant.sitewide:
            return None
        if grant.form_id is None and grant.project_id is not None:
            projects.add(grant.project_id)
    return frozenset(projects)
