"""Table definitions of the `events` schema (created by the `events` migration branch)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="events")

audits = Table(
    "audits",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("actor_id", Integer),
    Column("action", Text, nullable=False),
    Column("project_id", Integer),
    Column("target_type", Text),
    Column("target_id", Text),
    Column("details", JSONB, nullable=False),
    Column("logged_at", DateTime(timezone=True), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("event", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("consumer", Text, primary_key=True),
    Column("event", Text, primary_key=True),
)

# One row per (event, subscribed consumer), created by a trigger on outbox inserts.
deliveries = Table(
    "deliveries",
    metadata,
    Column("event_id", BigInteger, ForeignKey("events.outbox.id"), primary_key=True),
    Column("consumer", Text, primary_key=True),
    Column("status", Text, nullable=False),  # pending | running | done | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("processed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
