"""AccessPolicy: the Authorizer every facade uses, built on the pure role rules."""

from __future__ import annotations

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.domain import roles


class AccessPolicy:
    def can(self, actor: Actor, verb: str, project_id: int | None = None, form_id: str | None = None) -> bool:
        return roles.allows(actor.grants, verb, project_id, form_id)

    def require(
        self, actor: Actor, verb: str, project_id: int | None = None, form_id: str | None = None
    ) -> None:
        if self.can(actor, verb, project_id, form_id):
            return
        if actor.anonymous:
            raise Problem(problems.AUTHENTICATION_REQUIRED)
        raise Problem(problems.INSUFFICIENT_RIGHTS)

    def projects_with(self, actor: Actor, verb: str) -> frozenset[int] | None:
        return roles.projects_with(actor.grants, verb)
