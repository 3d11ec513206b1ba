"""Table definitions of the `analytics` schema (created by the `analytics` migration branch)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="analytics")

findings = Table(
    "findings",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("form_id", Integer, nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("submission_id", BigInteger),
    Column("field", Text),
    Column("enumerator", Text),
    Column("source", Text, nullable=False),
    Column("found_at", DateTime(timezone=True), nullable=False),
    Column("dismissed_at", DateTime(timezone=True)),
    Column("dismissed_by", Integer),
    Column("dismissal_comment", Text),
)

areas = Table(
    "areas",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("area", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

baselines = Table(
    "baselines",
    metadata,
    Column("form_id", Integer, primary_key=True),
    Column("scanned_at", DateTime(timezone=True), nullable=False),
    Column("submissions", Integer, nullable=False),
    Column("baseline", JSONB, nullable=False),
)
