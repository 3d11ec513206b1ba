"""Table definitions of the `aggregation` schema (created by the `aggregation` migration
branch). The layout is the read-model contract other readers (exports, analytics) rely on:
see /docs/aggregation.md."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="aggregation")

rows = Table(
    "rows",
    metadata,
    Column("submission_id", BigInteger, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("form_id", Integer, nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("instance_id", Text, nullable=False),
    Column("version_id", BigInteger, nullable=False),
    Column("current_instance_id", Text, nullable=False),
    Column("form_def_id", Integer, nullable=False),
    Column("form_version", Text, nullable=False),
    Column("instance_name", Text),
    Column("submitter_id", Integer),
    Column("device_id", Text),
    Column("user_agent", Text),
    Column("review_state", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    Column("edits", Integer, nullable=False),
    Column("attachments_expected", Integer, nullable=False),
    Column("attachments_present", Integer, nullable=False),
    Column("flag_count", Integer, nullable=False),
    Column("finding_count", Integer, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("status", Text),
)

repeat_rows = Table(
    "repeat_rows",
    metadata,
    Column("submission_id", BigInteger, primary_key=True),
    Column("form_id", Integer, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("repeat_path", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("parent_key", Text, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", JSONB, nullable=False),
)
