"""Shared pieces of the routers that serve form media: names, ETags, device URL prefixes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from fastapi import Response
from fastapi.responses import StreamingResponse

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.forms.domain.attachments import safe_name
from odk_mcp.services.forms.views import AttachmentView

if TYPE_CHECKING:
    from odk_mcp.services.forms import FormsService

KEY_SCOPE = "odk.key"  # set by the gateway for /v1/key/{token}/… requests
DRAFT_SCOPE = "odk.draft_token"  # set by the gateway for /v1/test/{token}/… requests


def attachment_response(
    view: AttachmentView, chunks: Iterator[bytes] | AsyncIterator[bytes], if_none_match: str | None
) -> Response:
    """Attachment bytes, streamed, with ETag = md5; 304 when the client already has them."""
    etag = f'"{view.md5}"'
    if if_none_match is not None and view.md5 in {tag.strip().strip('"') for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    headers = {"ETag": etag, "Content-Disposition": f'attachment; filename="{view.name}"'}
    if view.size is not None:
        headers["Content-Length"] = str(view.size)
    # A sync iterator: Starlette reads it in a worker thread, so blob I/O never blocks the loop.
    return StreamingResponse(
        chunks, media_type=view.content_type or "application/octet-stream", headers=headers
    )


def checked_name(name: str) -> str:
    if not safe_name(name):
        raise Problem(problems.UNEXPECTED_VALUE, "That is not a valid attachment name.", {"field": "name"})
    return name


def served_attachment(
    forms: FormsService,
    project_id: int,
    view: AttachmentView,
    if_none_match: str | None,
    actor: Actor | None = None,
) -> Response:
    """An uploaded file from the blob store, or the CSV of the entity list it is linked to."""
    if view.dataset:
        chunks = forms.drafts.dataset_csv(project_id, view.name, actor)
        return attachment_response(view, chunks, if_none_match)
    assert view.sha256 is not None
    return attachment_response(view, forms.drafts.blob_chunks(view.sha256), if_none_match)
