"""What every tool call goes through: the caller, the scope, a per-caller rate limit, a time
cap, error rendering, and an audit entry (caller, tool, target, rows returned — never the
response body).

Permissions on projects and forms are not checked here: the service facades check them with
the same Authorizer as REST. Scopes are checked here, because they belong to the token, not to
the user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.mcp.auth import Callers
from odk_mcp.services.users import ScopedActor

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """What a call is about, for the audit log."""

    project_id: int | None = None
    xml_form_id: str | None = None
    instance_id: str | None = None

    def audit_target(self) -> tuple[str | None, str | None]:
        if self.instance_id is not None:
            return "submission", self.instance_id
        if self.xml_form_id is not None:
            return "form", self.xml_form_id
        if self.project_id is not None:
            return "project", str(self.project_id)
        return None, None


class ScopeMissing(ToolError):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(
            json.dumps(
                {
                    "error": "insufficient_scope",
                    "scope": scope,
                    "message": f"This needs the `{scope}` scope; the token does not carry it.",
                }
            )
        )


def problem_error(problem: Problem) -> ToolError:
    return ToolError(
        json.dumps({"code": problem.code, "message": problem.message, "details": problem.details})
    )


def rows_of(result: Any) -> int | None:
    rows = getattr(result, "audit_rows", None)
    return rows() if callable(rows) else None


class CallGuard:
    def __init__(self, callers: Callers, db: Database, rate_limit: str, timeout_seconds: float) -> None:
        self.callers = callers
        self._db = db
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit = parse(rate_limit)
        self.timeout_seconds = timeout_seconds

    async def caller(self, ctx: Context[Any, Any] | None, scope: str) -> ScopedActor:
        request = None
        if ctx is not None:
            try:
                request = ctx.request_context.request
            except ValueError:  # a context outside a request (direct calls in tests)
                request = None
        caller = await self.callers.current(request)
        if scope not in caller.scopes:
            raise ScopeMissing(scope)
        if not self._limiter.hit(self._limit, "mcp", str(caller.actor.id)):
            reset_at, _ = self._limiter.get_window_stats(self._limit, "mcp", str(caller.actor.id))
            wait = max(1, int(reset_at - time.time()) + 1)
            raise ToolError(
                json.dumps(
                    {"code": 429.2, "message": "Too many calls. Please slow down.", "retryAfter": wait}
                )
            )
        return caller

    async def call(
        self,
        ctx: Context[Any, Any] | None,
        tool: str,
        scope: str,
        target: Target,
        work: Callable[[ScopedActor], Awaitable[T]],
    ) -> T:
        caller = await self.caller(ctx, scope)
        outcome = "ok"
        rows: int | None = None
        try:
            with anyio.fail_after(self.timeout_seconds):
                result = await work(caller)
            rows = rows_of(result)
            return result
        except TimeoutError:
            outcome = "timeout"
            message = f"The call took longer than {self.timeout_seconds:g} s and was stopped; narrow it."
            raise problem_error(Problem(problems.CALL_TIMED_OUT, message)) from None
        except Problem as problem:
            outcome = str(problem.code)
            raise problem_error(problem) from None
        finally:
            await self._audit(caller, tool, target, outcome, rows)

    async def _audit(
        self, caller: ScopedActor, tool: str, target: Target, outcome: str, rows: int | None
    ) -> None:
        target_type, target_id = target.audit_target()
        details: dict[str, Any] = {"tool": tool, "outcome": outcome, "via": caller.kind}
        if caller.token_id is not None:
            details["tokenId"] = caller.token_id
        if target.xml_form_id is not None:
            details["xmlFormId"] = target.xml_form_id
        if rows is not None:
            details["rows"] = rows
        with anyio.CancelScope(shield=True):
            async with self._db.transaction() as conn:
                await record_audit(
                    conn,
                    caller.actor,
                    "mcp.tool",
                    target_type,
                    target_id,
                    project_id=target.project_id,
                    details=details,
                )
