"""`/v1/projects/{p}/webhooks…`: subscriptions, their delivery log and manual retries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from odk_mcp.kernel.web import CurrentActor, RequestBody, RowId, success
from odk_mcp.services.webhooks.api.deps import Webhooks
from odk_mcp.services.webhooks.delivery_log import DeliveryPage
from odk_mcp.services.webhooks.subscriptions import WEBHOOK_ATTRIBUTES, NewWebhook, WebhookChanges

router = APIRouter(tags=["webhooks"])

BASE = "/v1/projects/{project_id}/webhooks"
ONE = BASE + "/{webhook_id}"

# Generous bounds that keep a request small; the facade applies the real rules.
Url = Annotated[str, Field(max_length=2000)]
Names = Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=500)]


class WebhookBody(RequestBody):
    url: Url
    events: Names
    xmlFormIds: Names | None = None
    fields: Names | None = None
    secret: Annotated[str, Field(max_length=500)] | None = None
    active: bool = True


class WebhookPatch(RequestBody):
    url: Url | None = None
    events: Names | None = None
    xmlFormIds: Names | None = None
    fields: Names | None = None
    secret: Annotated[str, Field(max_length=500)] | None = None
    active: bool | None = None


@router.get(BASE)
async def list_webhooks(project_id: RowId, actor: CurrentActor, service: Webhooks) -> list[dict[str, Any]]:
    return await service.subscriptions.list_webhooks(actor, project_id)


@router.post(BASE)
async def create_webhook(
    project_id: RowId, body: WebhookBody, actor: CurrentActor, service: Webhooks
) -> dict[str, Any]:
    new = NewWebhook(
        url=body.url,
        events=body.events,
        xml_form_ids=body.xmlFormIds,
        fields=body.fields,
        secret=body.secret,
        active=body.active,
    )
    return await service.subscriptions.create(actor, project_id, new)


@router.get(ONE)
async def get_webhook(
    project_id: RowId, webhook_id: RowId, actor: CurrentActor, service: Webhooks
) -> dict[str, Any]:
    return await service.subscriptions.get(actor, project_id, webhook_id)


@router.patch(ONE)
async def update_webhook(
    project_id: RowId, webhook_id: RowId, body: WebhookPatch, actor: CurrentActor, service: Webhooks
) -> dict[str, Any]:
    changes = WebhookChanges(
        given=frozenset(body.model_fields_set & WEBHOOK_ATTRIBUTES),
        url=body.url,
        events=body.events,
        xml_form_ids=body.xmlFormIds,
        fields=body.fields,
        secret=body.secret,
        active=body.active,
    )
    return await service.subscriptions.update(actor, project_id, webhook_id, changes)


@router.delete(ONE)
async def delete_webhook(
    project_id: RowId, webhook_id: RowId, actor: CurrentActor, service: Webhooks
) -> dict[str, bool]:
    await service.subscriptions.delete(actor, project_id, webhook_id)
    return success()


@router.get(ONE + "/deliveries")
async def list_deliveries(
    project_id: RowId,
    webhook_id: RowId,
    actor: CurrentActor,
    service: Webhooks,
    response: Response,
    status: str | None = Query(default=None, max_length=20),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=2**31 - 1),
) -> list[dict[str, Any]]:
    page = DeliveryPage(status=status, limit=limit, offset=offset)
    rows, total = await service.deliveries.list_deliveries(actor, project_id, webhook_id, page)
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.post(ONE + "/deliveries/{delivery_id}/retry")
async def retry_delivery(
    project_id: RowId,
    webhook_id: RowId,
    delivery_id: Annotated[str, Path(max_length=64)],
    actor: CurrentActor,
    service: Webhooks,
) -> dict[str, Any]:
    return await service.deliveries.retry(actor, project_id, webhook_id, delivery_id)
