"""Cross-service records written inside each unit of work: the audit log and the outbox."""

from odk_mcp.events.audit import AuditEntry, AuditLog, record_audit
from odk_mcp.events.outbox import emit

__all__ = ["AuditEntry", "AuditLog", "emit", "record_audit"]
