"""The `webhooks` event consumer: queues one delivery per matching subscription.

It runs in the event worker, in the transaction that marks the event delivered to this
consumer, and only writes rows: the HTTP requests are the sender's job, outside both the
request path and the event pipeline, so a slow or dead receiver delays nothing else.
The body of each delivery is built here, once, from the submission as it is at this
moment (the version the event names, for receipts and edits). A delivery's key is
(event id, subscription): a redelivered event queues nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events import Consumer, Event
from odk_mcp.kernel.clock import iso, utcnow
from odk_mcp.services.submissions import SUBMISSION_EVENTS, SubmissionSnapshot, read_snapshot
from odk_mcp.services.webhooks.adapters.tables import deliveries, subscriptions
from odk_mcp.services.webhooks.delivery_log import notify_sender
from odk_mcp.services.webhooks.domain.payload import DeliveryFacts, delivery_body

CONSUMER_NAME = "webhooks"
WEBHOOK_EVENTS: frozenset[str] = SUBMISSION_EVENTS


async def enqueue(conn: AsyncConnection, event: Event) -> None:
    """Queue the event for every live, active subscription of its project that wants it
    (events about draft test submissions excepted)."""
    payload = event.payload
    project_id = payload.get("projectId")
    if not isinstance(project_id, int) or payload.get("draft") is True:
        return  # test submissions to a draft are not announced
    xml_form_id = payload.get("xmlFormId")
    matching = (
        (
            await conn.execute(
                select(subscriptions.c.id, subscriptions.c.fields).where(
                    subscriptions.c.project_id == project_id,
                    subscriptions.c.deleted_at.is_(None),
                    subscriptions.c.active,
                    subscriptions.c.events.any_() == event.name,
                    or_(
                        subscriptions.c.xml_form_ids.is_(None),
                        subscriptions.c.xml_form_ids.any_() == (xml_form_id or ""),
                    ),
                )
            )
        )
        .mappings()
        .all()
    )
    if not matching:
        return
    snapshot = await _snapshot(conn, payload)
    if snapshot is not None and snapshot.draft:
        return
    enqueued_at = iso(utcnow())
    rows = []
    for subscription in matching:
        delivery_id = uuid.uuid4()
        facts = DeliveryFacts(
            delivery_id=str(delivery_id),
            webhook_id=subscription["id"],
            event_id=event.id,
            event=event.name,
            event_at=iso(event.created_at),
            enqueued_at=enqueued_at,
            project_id=project_id,
            xml_form_id=xml_form_id,
            instance_id=snapshot.instance_id if snapshot else payload.get("instanceId"),
            details=payload,
            submission=submission_json(snapshot) if snapshot else None,
            data=snapshot.data if snapshot else None,
        )
        rows.append(
            {
                "id": delivery_id,
                "subscription_id": subscription["id"],
                "project_id": project_id,
                "event_id": event.id,
                "event": event.name,
                "xml_form_id": xml_form_id,
                "instance_id": facts.instance_id,
                "body": delivery_body(facts, subscription["fields"]),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": func.now(),
                "created_at": func.now(),
                "updated_at": func.now(),
            }
        )
    inserted = await conn.execute(
        insert(deliveries)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[deliveries.c.event_id, deliveries.c.subscription_id])
        .returning(deliveries.c.id)
    )
    if inserted.first() is not None:
        await notify_sender(conn)


async def _snapshot(conn: AsyncConnection, payload: dict[str, Any]) -> SubmissionSnapshot | None:
    submission_id = payload.get("submissionId")
    if not isinstance(submission_id, int):
        return None
    version_id = payload.get("versionId")
    return await read_snapshot(conn, submission_id, version_id if isinstance(version_id, int) else None)


def submission_json(snapshot: SubmissionSnapshot) -> dict[str, Any]:
    """The submission's metadata in the API's JSON style; the version is the event's."""
    return {
        "instanceId": snapshot.instance_id,
        "versionInstanceId": snapshot.current_instance_id,
        "instanceName": snapshot.instance_name,
        "formVersion": snapshot.form_version,
        "submitterId": snapshot.submitter_id,
        "deviceId": snapshot.device_id,
        "reviewState": snapshot.review_state,
        "createdAt": iso(snapshot.created_at),
        "updatedAt": iso(snapshot.updated_at),
        "deletedAt": iso(snapshot.deleted_at),
        "edits": snapshot.edits,
        "attachmentsExpected": snapshot.attachments_expected,
        "attachmentsPresent": snapshot.attachments_present,
        "status": snapshot.status,
    }


async def enqueue_batch(conn: AsyncConnection, events: Sequence[Event]) -> None:
    """`enqueue` for several events: one look-up of the live subscriptions of their projects,
    and `enqueue` only for the events one of them may want (most projects have none)."""
    projects = {
        p
        for e in events
        if isinstance(p := e.payload.get("projectId"), int) and e.payload.get("draft") is not True
    }
    if not projects:
        return
    live = (
        await conn.execute(
            select(subscriptions.c.project_id, subscriptions.c.events, subscriptions.c.xml_form_ids).where(
                subscriptions.c.project_id.in_(sorted(projects)),
                subscriptions.c.deleted_at.is_(None),
                subscriptions.c.active,
            )
        )
    ).all()
    if not live:
        return
    for event in events:
        payload = event.payload
        if any(
            sub.project_id == payload.get("projectId")
            and event.name in sub.events
            and (sub.xml_form_ids is None or (payload.get("xmlFormId") or "") in sub.xml_form_ids)
            for sub in live
        ):
            await enqueue(conn, event)


def webhooks_consumer() -> Consumer:
    return Consumer(CONSUMER_NAME, WEBHOOK_EVENTS, enqueue, enqueue_batch)
