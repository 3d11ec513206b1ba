"""The JSON body of a delivery, built once when the delivery is queued and never again.

Freezing the body at enqueue time means a retry, a manual retry or a delivery delayed by
an open circuit sends exactly what the submission looked like when the event happened,
and the signature covers the same bytes every time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PAYLOAD_VERSION = 1


def select_fields(data: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """The data restricted to some field paths (all of it for None).

    A path keeps that element with everything under it; a path through a repeat keeps that
    part of every repeat entry; a path naming nothing present is left out.
    """
    if fields is None:
        return data
    selected: dict[str, Any] = {}
    for path in fields:
        _merge(selected, _pick(data, path.split("/")))
    return selected


def _pick(value: Any, steps: list[str]) -> Any:
    """The part of `value` under `steps`, with the path's structure kept; None if absent."""
    if not steps:
        return value
    if isinstance(value, list):
        picked = [_pick(entry, steps) for entry in value]
        return picked if any(p is not None for p in picked) else None
    if not isinstance(value, dict) or steps[0] not in value:
        return None
    inner = _pick(value[steps[0]], steps[1:])
    return None if inner is None else {steps[0]: inner}


def _merge(into: dict[str, Any], part: Any) -> None:
    if not isinstance(part, dict):
        return
    for key, value in part.items():
        existing = into.get(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            _merge(existing, value)
        elif isinstance(existing, list) and isinstance(value, list):
            for index, entry in enumerate(value):
                if index < len(existing) and isinstance(existing[index], dict):
                    _merge(existing[index], entry)
                elif index < len(existing) and existing[index] is None:
                    existing[index] = entry
        else:
            into[key] = value


@dataclass(frozen=True)
class DeliveryFacts:
    """Everything a delivery body says, gathered by the consumer when the event arrives."""

    delivery_id: str
    webhook_id: int
    event_id: int
    event: str
    event_at: str | None
    enqueued_at: str | None
    project_id: int
    xml_form_id: str | None
    instance_id: str | None
    details: dict[str, Any]
    submission: dict[str, Any] | None
    data: dict[str, Any] | None


def delivery_body(facts: DeliveryFacts, fields: list[str] | None) -> bytes:
    """The exact bytes sent (compact JSON, UTF-8)."""
    submission = facts.submission or {}
    body = {
        "version": PAYLOAD_VERSION,
        "id": facts.delivery_id,
        "webhookId": facts.webhook_id,
        "event": facts.event,
        "eventId": facts.event_id,
        "eventAt": facts.event_at,
        "enqueuedAt": facts.enqueued_at,
        "projectId": facts.project_id,
        "xmlFormId": facts.xml_form_id,
        "instanceId": facts.instance_id,
        "submitterId": submission.get("submitterId"),
        "reviewState": submission.get("reviewState"),
        "details": facts.details,
        "submission": facts.submission,
        "data": None if facts.data is None else select_fields(facts.data, fields),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
