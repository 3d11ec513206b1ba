"""The authorization port every service facade uses.

The users service owns roles and verbs and provides the implementation; other services
receive it from the composition root, so none of them imports the users service.
"""

from __future__ import annotations

from typing import Protocol

from odk_mcp.kernel.actor import Actor


class Authorizer(Protocol):
    def can(self, actor: Actor, verb: str, project_id: int | None = None, form_id: str | None = None) -> bool:
        """Whether the actor holds `verb` on the given scope (sitewide when no project)."""
        ...

    def require(
        self, actor: Actor, verb: str, project_id: int | None = None, form_id: str | None = None
    ) -> None:
        """Raise 401.1 (anonymous) or 403.1 unless the actor holds `verb` on the scope."""
        ...

    def projects_with(self, actor: Actor, verb: str) -> frozenset[int] | None:
        """Project ids where the actor holds `verb`; None means every project."""
        ...
