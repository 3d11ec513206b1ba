"""`/v1/projects/{p}/forms…`: upload, read, versions, fields, attachments, lifecycle."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.web import CurrentActor, parse_bool, read_body, success
from odk_mcp.services.forms.api.deps import Forms
from odk_mcp.services.forms.domain.schema import FormSchema
from odk_mcp.services.forms.uploads import UploadOptions
from odk_mcp.services.forms.views import ConversionView, FormView

router = APIRouter(tags=["forms"])

BASE = "/v1/projects/{project_id}/forms"
FORM = BASE + "/{xml_form_id}"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLS = "application/vnd.ms-excel"
EMPTY_VERSION = "___"  # ODK Central's path spelling of the empty version string


def upload_response(outcome: FormView | ConversionView) -> JSONResponse:
    if isinstance(outcome, ConversionView):
        body = outcome.to_json()
        body["statusUrl"] = f"/v1/projects/{outcome.project_id}/form-conversions/{outcome.id}"
        return JSONResponse(body, status_code=202)
    return JSONResponse(outcome.to_json())


def fields_json(schema: FormSchema) -> list[dict[str, Any]]:
    """Central's field list (`path, name, type, binary, selectMultiple`) plus our schema details."""
    out = []
    for f in schema.fields:
        out.append(
            {
                "path": f.path,
                "name": f.name,
                "type": f.type,
                "binary": f.binary or None,
                "selectMultiple": f.select_multiple or None,
                "repeat": f.repeat,
                "labels": f.labels,
                "choices": [{"value": c.value, "labels": c.labels} for c in f.choices],
                "choiceList": f.choice_list,
                "required": f.required,
                "constraint": f.constraint,
                "relevant": f.relevant,
                "calculate": f.calculate,
                "readonly": f.readonly,
            }
        )
    return out


def fallback_id(header: str | None) -> str | None:
    """The X-XlsForm-FormId-Fallback header; pyODK percent-encodes it (it is a file name)."""
    value = unquote(header or "").strip()
    return value or None


def _version(raw: str) -> str:
    return "" if raw == EMPTY_VERSION else raw


@router.post(BASE)
async def create_form(
    project_id: int,
    request: Request,
    actor: CurrentActor,
    forms: Forms,
    publish: str | None = Query(default=None),
    ignore_warnings: str | None = Query(default=None, alias="ignoreWarnings"),
    fallback: str | None = Header(default=None, alias="X-XlsForm-FormId-Fallback"),
) -> JSONResponse:
    options = UploadOptions(
        publish=parse_bool("publish", publish, False),
        ignore_warnings=parse_bool("ignoreWarnings", ignore_warnings, False),
        fallback_id=fallback_id(fallback),
    )
    body = await read_body(request, forms.catalog.max_form_bytes)
    outcome = await forms.uploads.upload(
        actor, project_id, body, request.headers.get("content-type"), options
    )
    return upload_response(outcome)


@router.get("/v1/projects/{project_id}/form-conversions/{conversion_id}")
async def conversion_status(
    project_id: int, conversion_id: str, actor: CurrentActor, forms: Forms
) -> dict[str, Any]:
    return (await forms.uploads.status(actor, project_id, conversion_id)).to_json()


@router.get(BASE)
async def list_forms(
    project_id: int, actor: CurrentActor, forms: Forms, deleted: str | None = Query(default=None)
) -> list[dict[str, Any]]:
    views = await forms.catalog.list_forms(actor, project_id, deleted=parse_bool("deleted", deleted, False))
    return [v.to_json() for v in views]


@router.get(FORM + "/submissions/keys")
async def form_keys(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> list[dict[str, Any]]:
    return await forms.catalog.keys(actor, project_id, xml_form_id)


@router.get(FORM + ".xml")
async def form_xml(project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms) -> Response:
    definition = await forms.catalog.definition(actor, project_id, xml_form_id)
    return Response(bytes(definition["xml"]), media_type="application/xml")


async def _source(
    forms: Any, actor: Any, project_id: int, xml_form_id: str, wanted: str, version: str | None
) -> Response:
    definition = await forms.catalog.definition(actor, project_id, xml_form_id, version=version)
    if definition["source_sha256"] is None or definition["source_type"] != wanted:
        raise Problem(problems.NOT_FOUND, "This form was not uploaded as that kind of file.")
    data = forms.catalog.read_blob(definition["source_sha256"])
    extension = "xlsx" if wanted == XLSX else "xls"
    return Response(
        data,
        media_type=wanted,
        headers={"Content-Disposition": f'attachment; filename="{xml_form_id}.{extension}"'},
    )


@router.get(FORM + ".xlsx")
async def form_xlsx(project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms) -> Response:
    return await _source(forms, actor, project_id, xml_form_id, XLSX, None)


@router.get(FORM + ".xls")
async def form_xls(project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms) -> Response:
    return await _source(forms, actor, project_id, xml_form_id, XLS, None)


@router.get(FORM)
async def get_form(project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms) -> dict[str, Any]:
    return (await forms.catalog.get(actor, project_id, xml_form_id)).to_json()


class FormPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: str


@router.patch(FORM)
async def update_form(
    project_id: int, xml_form_id: str, body: FormPatch, actor: CurrentActor, forms: Forms
) -> dict[str, Any]:
    return (await forms.catalog.set_state(actor, project_id, xml_form_id, body.state)).to_json()


@router.delete(FORM)
async def delete_form(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> dict[str, bool]:
    await forms.catalog.delete(actor, project_id, xml_form_id)
    return success()


@router.post(BASE + "/{form_id}/restore")
async def restore_form(project_id: int, form_id: int, actor: CurrentActor, forms: Forms) -> dict[str, Any]:
    return (await forms.catalog.restore(actor, project_id, form_id)).to_json()


@router.get(FORM + "/fields")
async def form_fields(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> list[dict[str, Any]]:
    definition = await forms.catalog.definition(actor, project_id, xml_form_id)
    return fields_json(FormSchema.from_json(definition["schema"]))


@router.get(FORM + "/versions")
async def form_versions(
    project_id: int, xml_form_id: str, actor: CurrentActor, forms: Forms
) -> list[dict[str, Any]]:
    return [v.to_json() for v in await forms.catalog.versions(actor, project_id, xml_form_id)]


@router.get(FORM + "/versions/{version}.xml")
async def version_xml(
    project_id: int, xml_form_id: str, version: str, actor: CurrentActor, forms: Forms
) -> Response:
    definition = await forms.catalog.definition(actor, project_id, xml_form_id, version=_version(version))
    return Response(bytes(definition["xml"]), media_type="application/xml")


@router.get(FORM + "/versions/{version}.xlsx")
async def version_xlsx(
    project_id: int, xml_form_id: str, version: str, actor: CurrentActor, forms: Forms
) -> Response:
    return await _source(forms, actor, project_id, xml_form_id, XLSX, _version(version))


@router.get(FORM + "/versions/{version}.xls")
async def version_xls(
    project_id: int, xml_form_id: str, version: str, actor: CurrentActor, forms: Forms
) -> Response:
    return await _source(forms, actor, project_id, xml_form_id, XLS, _version(version))


@router.get(FORM + "/versions/{version}")
async def form_version(
    project_id: int, xml_form_id: str, version: str, actor: CurrentActor, forms: Forms
) -> dict[str, Any]:
    wanted = _version(version)
    for view in await forms.catalog.versions(actor, project_id, xml_form_id):
        if (view.version or "") == wanted:
            return view.to_json()
    raise Problem(problems.NOT_FOUND)


@router.get(FORM + "/versions/{version}/fields")
async def version_fields(
    project_id: int, xml_form_id: str, version: str, actor: CurrentActor, forms: Forms
) -> list[dict[str, Any]]:
    definition = await forms.catalog.definition(actor, project_id, xml_form_id, version=_version(version))
    return fields_json(FormSchema.from_json(definition["schema"]))
