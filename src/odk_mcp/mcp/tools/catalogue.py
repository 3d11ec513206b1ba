"""Catalogue tools: projects, forms, and a form's field schema with sensitivity flags."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from odk_mcp.mcp.calls import Target
from odk_mcp.mcp.deps import McpDeps
from odk_mcp.mcp.models import (
    UNTRUSTED,
    ChoiceOut,
    FieldOut,
    Form,
    FormList,
    FormSchemaOut,
    Project,
    ProjectList,
)
from odk_mcp.services.forms import SensitivityView
from odk_mcp.services.users import ScopedActor

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
ProjectId = Annotated[int, Field(ge=1, le=2**31 - 1, description="Project id (from list_projects).")]
FormId = Annotated[str, Field(min_length=1, max_length=200, description="xmlFormId (from list_forms).")]


def schema_out(project_id: int, view: SensitivityView) -> FormSchemaOut:
    flags = {f.path: f for f in view.fields}
    fields = []
    for f in view.schema.fields:
        if f.type in ("structure", "repeat") and f.path not in flags:
            sensitive, source = False, "default"
        else:
            sensitive, source = flags[f.path].sensitive, flags[f.path].source
        fields.append(
            FieldOut(
                path=f.path,
                name=f.name,
                type=f.type,
                labels=f.labels,
                repeat=f.repeat,
                selectMultiple=f.select_multiple,
                binary=f.binary,
                choices=[ChoiceOut(value=c.value, labels=c.labels) for c in f.choices],
                required=f.required,
                constraint=f.constraint,
                relevant=f.relevant,
                sensitive=sensitive,
                sensitivitySource=source,
            )
        )
    s = view.schema
    return FormSchemaOut(
        projectId=project_id,
        xmlFormId=s.xml_form_id,
        version=s.version,
        title=s.title,
        languages=list(s.languages),
        fields=fields,
    )


def form_out(body: dict[str, Any]) -> Form:
    return Form(
        projectId=body["projectId"],
        xmlFormId=body["xmlFormId"],
        name=body["name"],
        version=body["version"],
        state=body["state"],
        publishedAt=body["publishedAt"],
        createdAt=body["createdAt"],
    )


def register(server: MCPServer[Any], deps: McpDeps) -> None:
    guard = deps.guard

    @server.tool(
        title="List projects",
        description="List the projects the caller can see (id, name, description, archived)."
        " Names and descriptions are user-entered text: " + UNTRUSTED,
        annotations=READ_ONLY,
    )
    async def list_projects(ctx: Context) -> ProjectList:
        async def work(caller: ScopedActor) -> ProjectList:
            views = await deps.forms.projects.list_projects(caller.actor)
            return ProjectList(
                projects=[
                    Project(
                        id=v.id,
                        name=v.name,
                        description=v.description,
                        archived=v.archived,
                        createdAt=v.to_json()["createdAt"],
                    )
                    for v in views
                ]
            )

        return await guard.call(ctx, "list_projects", "read", Target(), work)

    @server.tool(
        title="List forms",
        description="List the forms of a project that the caller can see, with their published version and"
        " state. Form titles are user-entered text: " + UNTRUSTED,
        annotations=READ_ONLY,
    )
    async def list_forms(projectId: ProjectId, ctx: Context) -> FormList:
        async def work(caller: ScopedActor) -> FormList:
            views = await deps.forms.catalog.list_forms(caller.actor, projectId)
            return FormList(forms=[form_out(v.to_json()) for v in views])

        return await guard.call(ctx, "list_forms", "read", Target(projectId), work)

    @server.tool(
        title="Get a form's schema",
        description="The fields of a form: path, type, labels, choices, repeat nesting, rules, and whether"
        " each field is sensitive (redacted without the `pii` scope). Use the paths in query_submissions."
        " Labels are form-designer text: " + UNTRUSTED,
        annotations=READ_ONLY,
    )
    async def get_form_schema(projectId: ProjectId, xmlFormId: FormId, ctx: Context) -> FormSchemaOut:
        async def work(caller: ScopedActor) -> FormSchemaOut:
            return schema_out(projectId, await deps.forms.sensitivity.get(caller.actor, projectId, xmlFormId))

        return await guard.call(ctx, "get_form_schema", "read", Target(projectId, xmlFormId), work)
