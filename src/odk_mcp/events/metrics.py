"""Prometheus gauges of event deliveries, read from the database when `/metrics` is scraped.

Read at scrape time rather than counted by a worker, so every server shows the whole
deployment's backlog, including work of `odk-mcp worker` processes elsewhere.
"""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.exc import SQLAlchemyError

from odk_mcp.events.deliveries import OPEN_STATUSES, Deliveries

log = structlog.get_logger("odk_mcp.events")


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Gauge(
            "odk_mcp_event_deliveries",
            "Open event deliveries (pending, running, dead) per consumer",
            ["consumer", "status"],
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "odk_mcp_event_oldest_pending_seconds",
            "Age of the oldest pending delivery's event per consumer (0 when none is pending)",
            ["consumer"],
            registry=registry,
        )

    async def refresh(self, source: Deliveries) -> None:
        """Replace the gauges' values; on a database error keep the last ones."""
        try:
            backlog = await source.backlog()
        except (OSError, SQLAlchemyError) as exc:
            log.warning("event_metrics_unavailable", error_type=type(exc).__name__)
            return
        # No await from here on: a concurrent scrape never sees the gauges half cleared.
        self.deliveries.clear()
        self.oldest_pending.clear()
        for entry in backlog:
            for status in OPEN_STATUSES:
                self.deliveries.labels(entry.consumer, status).set(entry.counts[status])
            self.oldest_pending.labels(entry.consumer).set(entry.oldest_pending_seconds or 0.0)
