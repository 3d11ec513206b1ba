"""Table definitions of the `events` schema (created by the `events` migration branch)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text
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
