"""OpenRosa submission for ODK Collect and Enketo: `HEAD|POST {base}/submission`.

Every answer, errors included, is an `OpenRosaResponse` XML envelope with
`X-OpenRosa-Version: 1.0`; success is 201 (Collect counts 200 as failure). The multipart body
is parsed by Starlette's streaming parser: files are spooled to disk past 1 MB, never held
whole in memory.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from odk_mcp.kernel import problems
from odk_mcp.kernel.openrosa import envelope, openrosa_headers
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import MAX_ID, current_actor
from odk_mcp.services.submissions.api.deps import DRAFT_SCOPE, Submissions
from odk_mcp.services.submissions.receiving import IncomingFile, ReceiveSubmission

router = APIRouter(tags=["openrosa submissions"])

XML_PART = "xml_submission_file"
MAX_FILES = 1000


def error_envelope(problem: Problem) -> Response:
    return envelope(problem.message, problem.status, nature="error", headers=problem.headers)


async def _receive(
    request: Request, service: Submissions, project_id: int, xml_form_id: str | None
) -> Response:
    try:
        draft_token = request.scope.get(DRAFT_SCOPE)
        actor = await current_actor(request)
        if actor.anonymous and draft_token is None:
            raise Problem(
                problems.AUTHENTICATION_REQUIRED, headers={"WWW-Authenticate": 'Basic charset="UTF-8"'}
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > service.max_submission_bytes:
            raise Problem(problems.PAYLOAD_TOO_LARGE, details={"limit": service.max_submission_bytes})
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise Problem(problems.UNSUPPORTED_MEDIA_TYPE, "OpenRosa submissions are multipart/form-data.")
        try:
            form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES, max_part_size=1024 * 1024)
        except Exception as exc:
            raise Problem(
                problems.UNPARSEABLE, "The multipart body could not be read.", {"format": "multipart"}
            ) from exc
        xml_part = form.get(XML_PART)
        if not isinstance(xml_part, UploadFile):
            raise Problem(problems.MISSING_MULTIPART_FIELD)
        xml = await xml_part.read(service.max_xml_bytes + 1)
        if len(xml) > service.max_xml_bytes:
            raise Problem(problems.PAYLOAD_TOO_LARGE, details={"limit": service.max_xml_bytes})
        files = [
            IncomingFile(name=part.filename or key, content=part.file, content_type=part.content_type)
            for key, part in form.multi_items()
            if isinstance(part, UploadFile) and key != XML_PART
        ]
        command = ReceiveSubmission(
            project_id=project_id,
            xml=xml,
            files=files,
            device_id=request.query_params.get("deviceID"),
            user_agent=request.headers.get("user-agent"),
            draft=xml_form_id is not None,
            xml_form_id=xml_form_id,
            draft_token=str(draft_token) if draft_token is not None else None,
        )
        await service.receiver.receive(actor, command, view=False)
        await form.close()
    except Problem as problem:
        return error_envelope(problem)
    return envelope("full submission upload was successful!", 201)


def _head(service: Submissions) -> Response:
    return Response(
        status_code=204,
        headers={
            **openrosa_headers(),
            "X-OpenRosa-Accept-Content-Length": str(service.max_submission_bytes),
        },
    )


@router.head("/v1/projects/{project_id}/submission")
async def head_submission(project_id: int, request: Request, service: Submissions) -> Response:
    try:
        actor = await current_actor(request)
        if actor.anonymous:
            raise Problem(
                problems.AUTHENTICATION_REQUIRED, headers={"WWW-Authenticate": 'Basic charset="UTF-8"'}
            )
    except Problem as problem:
        return error_envelope(problem)
    return _head(service)


@router.post("/v1/projects/{project_id}/submission")
async def post_submission(project_id: int, request: Request, service: Submissions) -> Response:
    return await _receive(request, service, project_id, None)


@router.head("/v1/projects/{project_id}/forms/{xml_form_id}/draft/submission")
async def head_draft_submission(
    project_id: int, xml_form_id: str, request: Request, service: Submissions
) -> Response:
    if DRAFT_SCOPE not in request.scope:
        return error_envelope(Problem(problems.DRAFT_ACCESS_FAILED))
    return _head(service)


@router.post("/v1/projects/{project_id}/forms/{xml_form_id}/draft/submission")
async def post_draft_submission(
    project_id: int, xml_form_id: str, request: Request, service: Submissions
) -> Response:
    return await _receive(request, service, project_id, xml_form_id)


# -- the hot path -------------------------------------------------------------------------------
# ODK Collect's submission POST is the busiest request by far, and FastAPI's per-request
# machinery (route scan across every router, dependency solving) cost about as much as the
# database work of a group-committed submission. The same handler is therefore also mounted
# as a plain Starlette route, matched before the FastAPI routes (gateway/app.py); the FastAPI
# routes above stay for HEAD and for the OpenAPI document; answers are the same either way.


class _PlainRoute(Route):
    """A Starlette route that records itself as the request's route, as FastAPI's routes do
    (the access log and metrics name the route template)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.FULL:
            child["route"] = self
        return match, child


async def _plain_post(request: Request) -> Response:
    service: Any = request.app.state.submissions
    raw_id: str = request.path_params["project_id"]
    if not (raw_id.isascii() and raw_id.isdigit()) or int(raw_id) > MAX_ID:
        # What the FastAPI route answers for a path that cannot name a project.
        raise Problem(problems.NOT_FOUND)
    xml_form_id: str | None = request.path_params.get("xml_form_id")
    return await _receive(request, service, int(raw_id), xml_form_id)


def plain_routes() -> list[BaseRoute]:
    """`POST {base}/submission` (and the draft one) as plain Starlette routes."""
    return [
        _PlainRoute("/v1/projects/{project_id}/submission", _plain_post, methods=["POST"]),
        _PlainRoute(
            "/v1/projects/{project_id}/forms/{xml_form_id}/draft/submission",
            _plain_post,
            methods=["POST"],
        ),
    ]
