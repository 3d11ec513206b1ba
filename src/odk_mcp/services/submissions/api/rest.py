"""REST submissions: `/v1/projects/{p}/forms/{f}/submissions…` and the same under `…/draft/`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, parse_bool, read_body, success
from odk_mcp.services.submissions.api.deps import Submissions
from odk_mcp.services.submissions.receiving import ReceiveSubmission
from odk_mcp.services.submissions.records import ListFilter

router = APIRouter(tags=["submissions"])

FORM = "/v1/projects/{project_id}/forms/{xml_form_id}"
XML_TYPES = ("application/xml", "text/xml")


async def _xml_body(request: Request, service: Any) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in XML_TYPES:
        raise Problem(problems.UNSUPPORTED_MEDIA_TYPE, "Send the submission XML as application/xml.")
    return await read_body(request, service.max_xml_bytes)


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reviewState: str | None


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    body: str


def _routes(prefix: str, draft: bool) -> None:
    """Register the submission routes under one prefix (published or draft)."""
    base = prefix + "/submissions"
    one = base + "/{instance_id}"

    async def create(
        project_id: int,
        xml_form_id: str,
        request: Request,
        actor: CurrentActor,
        service: Submissions,
        device_id: str | None = Query(default=None, alias="deviceID", max_length=500),
    ) -> dict[str, Any]:
        command = ReceiveSubmission(
            project_id=project_id,
            xml=await _xml_body(request, service),
            device_id=device_id,
            user_agent=request.headers.get("user-agent"),
            draft=draft,
            xml_form_id=xml_form_id,
        )
        return (await service.receiver.receive(actor, command)).view().to_json()

    async def list_all(
        project_id: int,
        xml_form_id: str,
        actor: CurrentActor,
        service: Submissions,
        response: Response,
        limit: int | None = Query(default=None, ge=1, le=100_000),
        offset: int = Query(default=0, ge=0),
        submitter_id: int | None = Query(default=None, alias="submitterId"),
        review_state: str | None = Query(default=None, alias="reviewState", max_length=50),
        start: datetime | None = Query(default=None),
        end: datetime | None = Query(default=None),
        deleted: str | None = Query(default=None),
    ) -> list[dict[str, Any]]:
        filters = ListFilter(
            submitter_id=submitter_id,
            review_state=review_state,
            start=start,
            end=end,
            deleted=parse_bool("deleted", deleted, False),
            limit=limit,
            offset=offset,
        )
        views, total = await service.records.list_submissions(actor, project_id, xml_form_id, draft, filters)
        response.headers["X-Total-Count"] = str(total)
        return [v.to_json() for v in views]

    async def xml(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> Response:
        body = await service.records.xml(actor, project_id, xml_form_id, instance_id, draft)
        return Response(body, media_type="application/xml")

    async def get(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> dict[str, Any]:
        return (await service.records.get(actor, project_id, xml_form_id, instance_id, draft)).to_json()

    async def data(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> Any:
        return await service.records.data(actor, project_id, xml_form_id, instance_id, draft)

    async def edit(
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        request: Request,
        actor: CurrentActor,
        service: Submissions,
    ) -> dict[str, Any]:
        command = ReceiveSubmission(
            project_id=project_id,
            xml=await _xml_body(request, service),
            user_agent=request.headers.get("user-agent"),
            draft=draft,
            xml_form_id=xml_form_id,
            edit_of=instance_id,
        )
        return (await service.receiver.receive(actor, command)).view().to_json()

    async def review(
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        body: ReviewBody,
        actor: CurrentActor,
        service: Submissions,
    ) -> dict[str, Any]:
        view = await service.records.set_review_state(
            actor, project_id, xml_form_id, instance_id, draft, body.reviewState
        )
        return view.to_json()

    async def delete(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> dict[str, bool]:
        await service.records.delete(actor, project_id, xml_form_id, instance_id, draft)
        return success()

    async def restore(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> dict[str, bool]:
        await service.records.restore(actor, project_id, xml_form_id, instance_id, draft)
        return success()

    async def versions(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> list[dict[str, Any]]:
        return [
            v.to_json()
            for v in await service.records.versions(actor, project_id, xml_form_id, instance_id, draft)
        ]

    async def version_xml(
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        version_id: str,
        actor: CurrentActor,
        service: Submissions,
    ) -> Response:
        body = await service.records.xml(
            actor, project_id, xml_form_id, instance_id, draft, version=version_id
        )
        return Response(body, media_type="application/xml")

    async def list_attachments(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> list[dict[str, Any]]:
        return await service.records.attachments(actor, project_id, xml_form_id, instance_id, draft)

    async def get_attachment(
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        name: str,
        actor: CurrentActor,
        service: Submissions,
        if_none_match: str | None = Header(default=None),
    ) -> Response:
        found = await service.records.attachment(actor, project_id, xml_form_id, instance_id, draft, name)
        etag = f'"{found.md5}"'
        if if_none_match is not None and found.md5 in {
            t.strip().strip('"') for t in if_none_match.split(",")
        }:
            return Response(status_code=304, headers={"ETag": etag})
        headers = {"ETag": etag}
        if found.size is not None:
            headers["Content-Length"] = str(found.size)
        # A sync iterator: Starlette reads it in a worker thread, so blob I/O never blocks the loop.
        return StreamingResponse(
            service.records.blob_chunks(found.sha256), media_type=found.content_type, headers=headers
        )

    async def put_attachment(
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        name: str,
        request: Request,
        actor: CurrentActor,
        service: Submissions,
    ) -> dict[str, bool]:
        data = await read_body(request, service.max_submission_bytes)
        await service.records.put_attachment(
            actor,
            project_id,
            xml_form_id,
            instance_id,
            draft,
            name,
            data,
            request.headers.get("content-type"),
        )
        return success()

    async def clear_attachment(
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        name: str,
        actor: CurrentActor,
        service: Submissions,
    ) -> dict[str, bool]:
        await service.records.clear_attachment(actor, project_id, xml_form_id, instance_id, draft, name)
        return success()

    async def list_comments(
        project_id: int, xml_form_id: str, instance_id: str, actor: CurrentActor, service: Submissions
    ) -> list[dict[str, Any]]:
        return await service.records.list_comments(actor, project_id, xml_form_id, instance_id, draft)

    async def add_comment(
        project_id: int,
        xml_form_id: str,
        instance_id: str,
        body: CommentBody,
        actor: CurrentActor,
        service: Submissions,
    ) -> dict[str, Any]:
        return await service.records.add_comment(
            actor, project_id, xml_form_id, instance_id, draft, body.body
        )

    async def findings(
        project_id: int,
        xml_form_id: str,
        actor: CurrentActor,
        service: Submissions,
        outcome: str | None = Query(default=None, pattern="^(violated|not-evaluated)$"),
        limit: int = Query(default=1000, ge=1, le=10_000),
        offset: int = Query(default=0, ge=0),
    ) -> list[dict[str, Any]]:
        return await service.records.form_findings(
            actor, project_id, xml_form_id, draft, outcome, limit, offset
        )

    tag = "draft submissions" if draft else "submissions"
    add = router.add_api_route
    add(base, create, methods=["POST"], tags=[tag], name=f"{tag} create")
    add(base, list_all, methods=["GET"], tags=[tag], name=f"{tag} list")
    add(prefix + "/findings", findings, methods=["GET"], tags=[tag], name=f"{tag} findings")
    add(one + ".xml", xml, methods=["GET"], tags=[tag], name=f"{tag} xml")
    add(one, get, methods=["GET"], tags=[tag], name=f"{tag} get")
    add(one + "/data", data, methods=["GET"], tags=[tag], name=f"{tag} data")
    add(one, edit, methods=["PUT"], tags=[tag], name=f"{tag} edit")
    add(one, review, methods=["PATCH"], tags=[tag], name=f"{tag} review")
    add(one, delete, methods=["DELETE"], tags=[tag], name=f"{tag} delete")
    add(one + "/restore", restore, methods=["POST"], tags=[tag], name=f"{tag} restore")
    add(one + "/versions", versions, methods=["GET"], tags=[tag], name=f"{tag} versions")
    add(
        one + "/versions/{version_id}.xml",
        version_xml,
        methods=["GET"],
        tags=[tag],
        name=f"{tag} version xml",
    )
    add(one + "/attachments", list_attachments, methods=["GET"], tags=[tag], name=f"{tag} attachments")
    add(one + "/attachments/{name}", get_attachment, methods=["GET"], tags=[tag], name=f"{tag} attachment")
    add(
        one + "/attachments/{name}",
        put_attachment,
        methods=["POST"],
        tags=[tag],
        name=f"{tag} attachment upload",
    )
    add(
        one + "/attachments/{name}",
        clear_attachment,
        methods=["DELETE"],
        tags=[tag],
        name=f"{tag} attachment clear",
    )
    add(one + "/comments", list_comments, methods=["GET"], tags=[tag], name=f"{tag} comments")
    add(one + "/comments", add_comment, methods=["POST"], tags=[tag], name=f"{tag} comment")


_routes(FORM, draft=False)
_routes(FORM + "/draft", draft=True)

__all__ = ["router"]
