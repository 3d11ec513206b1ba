"""OpenRosa endpoints for ODK Collect and Enketo: form list, manifests, draft testing.

All answer `text/xml; charset=utf-8` with `X-OpenRosa-Version: 1.0`, and build absolute
URLs from the configured public URL, keeping the app-user key or draft-token prefix the
request came in with so that devices keep authenticating the same way.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor, ActorType
from odk_mcp.kernel.openrosa import openrosa_headers
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor
from odk_mcp.services.forms.api.deps import Forms
from odk_mcp.services.forms.api.media import DRAFT_SCOPE, KEY_SCOPE, checked_name, served_attachment
from odk_mcp.services.forms.openrosa import form_list_xml, manifest_xml

router = APIRouter(tags=["openrosa"])

FORM = "/v1/projects/{project_id}/forms/{xml_form_id}"


def openrosa(body: bytes) -> Response:
    return Response(
        body,
        media_type="text/xml; charset=utf-8",
        headers=openrosa_headers(),
    )


def base_url(request: Request, public_url: str) -> str:
    """`{public}/v1`, keeping a `/key/{token}` or `/test/{token}` prefix the request used."""
    root = public_url.rstrip("/") + "/v1"
    if KEY_SCOPE in request.scope:
        return f"{root}/key/{request.scope[KEY_SCOPE]}"
    if DRAFT_SCOPE in request.scope:
        return f"{root}/test/{request.scope[DRAFT_SCOPE]}"
    return root


def link_query(request: Request, actor: Actor) -> str:
    """`?st={token}` for a public link (its token travels in the query string, so the URLs it
    is given must carry it), else nothing."""
    token = request.query_params.get("st")
    return f"?st={quote(token, safe='')}" if token and actor.type is ActorType.PUBLIC_LINK else ""


def draft_token(request: Request) -> str:
    token = request.scope.get(DRAFT_SCOPE)
    if not token:
        raise Problem(problems.DRAFT_ACCESS_FAILED)
    return str(token)


def require_openrosa_header(version: str | None) -> None:
    if (version or "").strip() != "1.0":
        raise Problem(
            problems.INVALID_HEADER,
            "OpenRosa requests need the header X-OpenRosa-Version: 1.0.",
            {"field": "X-OpenRosa-Version", "value": version},
        )


@router.api_route("/v1/projects/{project_id}/formList", methods=["GET", "HEAD"])
async def form_list(
    project_id: int,
    request: Request,
    actor: CurrentActor,
    forms: Forms,
    form_id: str | None = Query(default=None, alias="formID", max_length=1000),
    openrosa_version: str | None = Header(default=None, alias="X-OpenRosa-Version"),
) -> Response:
    require_openrosa_header(openrosa_version)
    listed = await forms.discovery.form_list(actor, project_id, form_id)
    return openrosa(
        form_list_xml(listed, base_url(request, forms.public_url), query=link_query(request, actor))
    )


@router.get(FORM + "/manifest")
async def manifest(
    project_id: int, xml_form_id: str, request: Request, actor: CurrentActor, forms: Forms
) -> Response:
    attachments = await forms.drafts.attachments(actor, project_id, xml_form_id)
    base = f"{base_url(request, forms.public_url)}/projects/{project_id}"
    return openrosa(
        manifest_xml(
            attachments,
            f"{base}/forms/{xml_form_id}/attachments",
            f"{base}/datasets",
            query=link_query(request, actor),
        )
    )


# Draft testing: `/v1/test/{draftToken}/projects/{p}/forms/{f}/draft/…`, no other credentials.
@router.api_route(FORM + "/draft/formList", methods=["GET", "HEAD"])
async def draft_form_list(
    project_id: int,
    xml_form_id: str,
    request: Request,
    forms: Forms,
    openrosa_version: str | None = Header(default=None, alias="X-OpenRosa-Version"),
) -> Response:
    require_openrosa_header(openrosa_version)
    listed = await forms.discovery.draft_by_token(draft_token(request), project_id, xml_form_id)
    return openrosa(form_list_xml([listed], base_url(request, forms.public_url), draft=True))


@router.get(FORM + "/draft/manifest")
async def draft_manifest(project_id: int, xml_form_id: str, request: Request, forms: Forms) -> Response:
    if DRAFT_SCOPE not in request.scope:
        raise Problem(problems.DRAFT_ACCESS_FAILED)
    attachments = await forms.discovery.draft_attachments(draft_token(request), project_id, xml_form_id)
    base = f"{base_url(request, forms.public_url)}/projects/{project_id}"
    url = f"{base}/forms/{xml_form_id}/draft/attachments"
    return openrosa(manifest_xml(attachments, url, f"{base}/datasets"))


async def draft_xml_by_token(request: Request, forms: Forms, project_id: int, xml_form_id: str) -> Response:
    xml = await forms.discovery.draft_xml(draft_token(request), project_id, xml_form_id)
    return Response(xml, media_type="application/xml")


async def draft_attachment_by_token(
    request: Request, forms: Forms, project_id: int, xml_form_id: str, name: str, if_none_match: str | None
) -> Response:
    attachments = await forms.discovery.draft_attachments(draft_token(request), project_id, xml_form_id)
    found = [a for a in attachments if a.name == checked_name(name) and a.exists]
    if not found:
        raise Problem(problems.NOT_FOUND)
    return served_attachment(forms, project_id, found[0], if_none_match)
