"""Table definitions of the `submissions` schema (created by the `submissions` migration branch)."""

from __future__ import annotations

from sqlalchemy import (
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
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="submissions")

submissions = Table(
    "submissions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("form_id", Integer, nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("instance_id", Text, nullable=False),
    Column("current_version_id", BigInteger),
    Column("submitter_id", Integer),
    Column("device_id", Text),
    Column("user_agent", Text),
    Column("review_state", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
)

versions = Table(
    "versions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("submission_id", BigInteger, ForeignKey(submissions.c.id), nullable=False),
    Column("form_id", Integer, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("instance_id", Text, nullable=False),
    Column("deprecated_id", Text),
    Column("instance_name", Text),
    Column("form_def_id", Integer, nullable=False),
    Column("form_version", Text, nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Column("xml_sha256", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("flags", JSONB, nullable=False),
    Column("findings", JSONB, nullable=False),
    Column("encryption", JSONB),
    Column("current", Boolean, nullable=False),
    Column("submitter_id", Integer),
    Column("device_id", Text),
    Column("user_agent", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

attachments = Table(
    "attachments",
    metadata,
    Column("version_id", BigInteger, ForeignKey(versions.c.id), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("blob_sha256", Text),
    Column("blob_md5", Text),
    Column("blob_size", BigInteger),
    Column("content_type", Text),
    Column("updated_at", DateTime(timezone=True)),
)

comments = Table(
    "comments",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("submission_id", BigInteger, ForeignKey(submissions.c.id), nullable=False),
    Column("actor_id", Integer),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
