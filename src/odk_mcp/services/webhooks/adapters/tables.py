"""Table definitions of the `webhooks` schema (created by the `webhooks` migration branch)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
)

metadata = MetaData(schema="webhooks")

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("origin", Text, nullable=False),
    Column("events", ARRAY(Text), nullable=False),
    Column("xml_form_ids", ARRAY(Text)),
    Column("fields", ARRAY(Text)),
    Column("secret_sealed", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_by", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("subscription_id", Integer, ForeignKey(subscriptions.c.id), nullable=False),
    Column("project_id", Integer, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("event", Text, nullable=False),
    Column("xml_form_id", Text),
    Column("instance_id", Text),
    Column("body", LargeBinary, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("open_until", DateTime(timezone=True)),
    Column("probe_until", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The sender LISTENs here; enqueueing and manual retries NOTIFY (delivered at commit).
NOTIFY_CHANNEL = "odk_mcp_webhooks"
