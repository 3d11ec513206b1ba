"""What the webhooks service hands out: subscriptions (never their secret) and deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping

from odk_mcp.kernel.clock import iso


def subscription_json(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "url": row["url"],
        "events": list(row["events"]),
        "xmlFormIds": None if row["xml_form_ids"] is None else list(row["xml_form_ids"]),
        "fields": None if row["fields"] is None else list(row["fields"]),
        "active": row["active"],
        "createdBy": row["created_by"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def delivery_json(row: RowMapping) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "webhookId": row["subscription_id"],
        "eventId": row["event_id"],
        "event": row["event"],
        "xmlFormId": row["xml_form_id"],
        "instanceId": row["instance_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "nextAttemptAt": iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "lastStatus": row["last_status"],
        "lastError": row["last_error"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "deliveredAt": iso(row["delivered_at"]),
    }
