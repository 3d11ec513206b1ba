"""Drafts and attachments: `…/forms/{f}/draft…` and `…/forms/{f}/attachments…`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from odk_mcp.kernel.web import CurrentActor, parse_bool, read_body, success
from odk_mcp.services.forms.api.deps import Forms
from odk_mcp.services.forms.api.forms import FORM, fallback_id, fields_json, upload_response
from odk_mcp.services.forms.api.media import DRAFT_SCOPE, checked_name, served_attachment
from odk_mcp.services.forms.api.openrosa import draft_attachment_by_token, draft_xml_by_token
from odk_mcp.services.forms.domain.schema import FormSchema
from odk_mcp.services.forms.uploads import UploadOptions
from odk_mcp.services.forms.views import ConversionView, FormView

router = APIRouter(tags=["drafts and attachments"])

DRAFT = FORM + "/draft"


@router.post(DRAFT)
async def create_draft(
    project_id: int,
    xml_form_id: str,
    request: Request,
    actor: CurrentActor,
    forms: Forms,
    ignore_warnings: str | None = Query(default=None, alias="ignoreWarnings"),
    fallback: str | None = Header(default=None, alias="X-XlsForm-FormId-Fallback"),
) -> JSONResponse:
    body = await read_body(request, forms.catalog.max_form_bytes)
    if not body:
        outcome: FormView | ConversionView = await forms.drafts.create(actor, project_id, xml_form_id, None)
    else:
        options = UploadOptions(
            ignore_warnings=parse_bool("ignoreWarnings", ignore_warnings, False),
            fallback_id=fallback_id(fallback),
            target_form=xml_form_id,
        )
        outcome = await forms.uploads.upload(
            actor, project_id, body, request.headers.get("content-type"), options
        )
    if isinstance(outcome, FormView):
        # Central answers {"success": true} (pyODK reads it); the draft's details come along.
        return JSONResponse({"success": True, **outcome.to_json()})
    return upload_response(outcome)


@router.get(DRAFT)
async def get_draft(project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms) -> dict[str, Any]:
    return (await forms.drafts.get(actor, project_id, xml_form_id)).to_json()


@router.get(DRAFT + ".xml")
async def draft_xml(
    project_id: int, xml_form_id: str, request: Request, actor: CurrentActor, forms: Forms
) -> Response:
    if DRAFT_SCOPE in request.scope:
        return await draft_xml_by_token(request, forms, project_id, xml_form_id)
    definition = await forms.catalog.definition(actor, project_id, xml_form_id, draft=True)
    return Response(bytes(definition["xml"]), media_type="application/xml")


@router.get(DRAFT + "/fields")
async def draft_fields(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> list[dict[str, Any]]:
    definition = await forms.catalog.definition(actor, project_id, xml_form_id, draft=True)
    return fields_json(FormSchema.from_json(definition["schema"]))


@router.delete(DRAFT)
async def delete_draft(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> dict[str, bool]:
    await forms.drafts.delete(actor, project_id, xml_form_id)
    return success()


@router.post(DRAFT + "/publish")
async def publish_draft(
    project_id: int,
    xml_form_id: str,
    actor: CurrentActor,
    forms: Forms,
    version: str | None = Query(default=None, max_length=1000),
) -> dict[str, bool]:
    await forms.drafts.publish(actor, project_id, xml_form_id, version)
    return success()


@router.get(DRAFT + "/attachments")
async def draft_attachments(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> list[dict[str, Any]]:
    return [a.to_json() for a in await forms.drafts.attachments(actor, project_id, xml_form_id, draft=True)]


@router.get(DRAFT + "/attachments/{name}")
async def draft_attachment(
    project_id: int,
    xml_form_id: str,
    name: str,
    request: Request,
    actor: CurrentActor,
    forms: Forms,
    if_none_match: str | None = Header(default=None),
) -> Response:
    if DRAFT_SCOPE in request.scope:
        return await draft_attachment_by_token(request, forms, project_id, xml_form_id, name, if_none_match)
    view = await forms.drafts.attachment(actor, project_id, xml_form_id, checked_name(name), draft=True)
    return served_attachment(forms, project_id, view, if_none_match, actor)


@router.post(DRAFT + "/attachments/{name}")
async def upload_draft_attachment(
    project_id: int, xml_form_id: str, name: str, request: Request, actor: CurrentActor, forms: Forms
) -> dict[str, Any]:
    data = await read_body(request, forms.max_attachment_bytes)
    content_type = request.headers.get("content-type")
    view = await forms.drafts.put_attachment(
        actor, project_id, xml_form_id, checked_name(name), data, content_type
    )
    return view.to_json()


@router.delete(DRAFT + "/attachments/{name}")
async def clear_draft_attachment(
    project_id: int, xml_form_id: str, name: str, actor: CurrentActor, forms: Forms
) -> dict[str, bool]:
    await forms.drafts.clear_attachment(actor, project_id, xml_form_id, checked_name(name))
    return success()


@router.get(FORM + "/attachments")
async def form_attachments(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> list[dict[str, Any]]:
    return [a.to_json() for a in await forms.drafts.attachments(actor, project_id, xml_form_id)]


@router.get(FORM + "/attachments/{name}")
async def form_attachment(
    project_id: int,
    xml_form_id: str,
    name: str,
    actor: CurrentActor,
    forms: Forms,
    if_none_match: str | None = Header(default=None),
) -> Response:
    view = await forms.drafts.attachment(actor, project_id, xml_form_id, checked_name(name))
    return served_attachment(forms, project_id, view, if_none_match, actor)
