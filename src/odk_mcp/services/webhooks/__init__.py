"""The webhooks service: per-project subscriptions to submission events, delivered as signed
HTTP POSTs by a background sender with retries and a circuit breaker (public surface)."""

from __future__ import annotations

from dataclasses import dataclass

from odk_mcp.events import Consumer
from odk_mcp.infra.sealing import Sealer
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.db import Database
from odk_mcp.services.webhooks.delivery_log import DeliveryLog
from odk_mcp.services.webhooks.enqueue import CONSUMER_NAME, WEBHOOK_EVENTS, webhooks_consumer
from odk_mcp.services.webhooks.metrics import WebhookMetrics
from odk_mcp.services.webhooks.ports import ProjectCatalogue
from odk_mcp.services.webhooks.sender import Sender, SenderOptions
from odk_mcp.services.webhooks.subscriptions import Subscriptions


@dataclass(frozen=True)
class WebhooksService:
    subscriptions: Subscriptions
    deliveries: DeliveryLog
    sender: Sender
    consumer: Consumer


def build_webhooks_service(
    db: Database,
    authorizer: Authorizer,
    projects: ProjectCatalogue,
    sealer: Sealer,
    options: SenderOptions,
) -> WebhooksService:
    subscriptions = Subscriptions(db, authorizer, projects, sealer, WEBHOOK_EVENTS, options.allow_private)
    return WebhooksService(
        subscriptions=subscriptions,
        deliveries=DeliveryLog(db, subscriptions),
        sender=Sender(db, sealer, options),
        consumer=webhooks_consumer(),
    )


__all__ = [
    "CONSUMER_NAME",
    "WEBHOOK_EVENTS",
    "ProjectCatalogue",
    "Sender",
    "SenderOptions",
    "WebhookMetrics",
    "WebhooksService",
    "build_webhooks_service",
]
