"""Prometheus gauges of webhook deliveries, read from the database when `/metrics` is scraped
(so every server shows the whole deployment's queue, whichever process sends it)."""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from odk_mcp.kernel.db import Database

log = structlog.get_logger("odk_mcp.webhooks")

GAUGED_STATUSES = ("pending", "sending", "failed")

# Each count uses a partial index of its status.
_QUEUE = text(
    """
    SELECT
        (SELECT count(*) FROM webhooks.deliveries WHERE status = 'pending') AS pending,
        (SELECT count(*) FROM webhooks.deliveries WHERE status = 'sending') AS sending,
        (SELECT count(*) FROM webhooks.deliveries WHERE status = 'failed') AS failed,
        (SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)
           FROM webhooks.deliveries WHERE status = 'pending' AND next_attempt_at <= now()) AS oldest_due,
        (SELECT count(*) FROM webhooks.endpoints WHERE state <> 'closed') AS open_endpoints
    """
)


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Gauge(
            "odk_mcp_webhook_deliveries",
            "Webhook deliveries waiting, being sent, or failed for good",
            ["status"],
            registry=registry,
        )
        self.oldest_due = Gauge(
            "odk_mcp_webhook_oldest_due_seconds",
            "How long the longest-waiting due webhook delivery has been due (0 when none)",
            registry=registry,
        )
        self.open_endpoints = Gauge(
            "odk_mcp_webhook_open_endpoints",
            "Receiving endpoints whose circuit breaker is open or half-open",
            registry=registry,
        )

    async def refresh(self, db: Database) -> None:
        """Replace the gauges' values; on a database error keep the last ones."""
        try:
            async with db.read() as conn:
                row = (await conn.execute(_QUEUE)).mappings().one()
        except (OSError, SQLAlchemyError) as exc:
            log.warning("webhook_metrics_unavailable", error_type=type(exc).__name__)
            return
        for status in GAUGED_STATUSES:
            self.deliveries.labels(status).set(row[status])
        self.oldest_due.set(float(row["oldest_due"]))
        self.open_endpoints.set(row["open_endpoints"])
