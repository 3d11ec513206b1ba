"""FastAPI dependencies of the submissions routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

if TYPE_CHECKING:
    from odk_mcp.services.submissions import SubmissionsService


def get_submissions(request: Request) -> SubmissionsService:
    return cast("SubmissionsService", request.app.state.submissions)


Submissions = Annotated["SubmissionsService", Depends(get_submissions)]

DRAFT_SCOPE = "odk.draft_token"  # set by the gateway for /v1/test/{token}/… requests
