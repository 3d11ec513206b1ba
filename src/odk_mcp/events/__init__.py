"""Cross-service records written inside each unit of work (the audit log and the outbox),
and the pipeline delivering outbox events to consumers."""

from odk_mcp.events.audit import AuditEntry, AuditLog, AuditRecord, record_audit, record_audits
from odk_mcp.events.consumers import Consumer, ConsumerRegistry, Event
from odk_mcp.events.deliveries import Deliveries
from odk_mcp.events.outbox import emit, emit_many, reserve_event_ids
from odk_mcp.events.worker import Backoff, EventWorker

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "Backoff",
    "Consumer",
    "ConsumerRegistry",
    "Deliveries",
    "Event",
    "EventWorker",
    "emit",
    "emit_many",
    "record_audit",
    "record_audits",
    "reserve_event_ids",
]
