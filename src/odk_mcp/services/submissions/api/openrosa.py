"""OpenRosa submission for ODK Collect and Enketo: `HEAD|POST {base}/submission`.

Every answer, errors included, is an `OpenRosaResponse` XML envelope with
`X-OpenRosa-Version: 1.0`; success is 201 (Collect counts 200 as failure). The multipart body
is parsed by Starlette's streaming parser: files are spooled to disk past 1 MB, never held
whole in memory.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from odk_mcp.kernel import problems
from odk_mcp.kernel.openrosa import envelope, openrosa_headers
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import current_actor
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
        await service.receiver.receive(actor, command)
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
