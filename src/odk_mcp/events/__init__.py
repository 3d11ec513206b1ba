"""Cross-service records written inside each unit of work (the audit log and the outbox),
and the pipeline delivering outbox events to consumers."""

from odk_mcp.events.audit import AuditEntry, AuditLog, record_audit
from odk_mcp.events.consumers import Consumer, ConsumerRegistry, Event
from odk_mcp.events.deliveries import Deliveries
from odk_mcp.events.outbox import emit
from odk_mcp.events.worker import Backoff, EventWorker

__all__ = [
    "AuditEntry",
    "AuditLog",
    "Backoff",
    "Consumer",
    "ConsumerRegistry",
    "Deliveries",
    "Event",
    "EventWorker",
    "emit",
    "record_audit",
]
