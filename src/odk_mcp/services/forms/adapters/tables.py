"""Table definitions of the `forms` schema (created by the `forms` migration branch)."""

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
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="forms")

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("archived", Boolean, nullable=False),
    Column("key_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
)

forms = Table(
    "forms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey(projects.c.id), nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    Column("current_def_id", Integer),
    Column("draft_def_id", Integer),
    Column("draft_token_hash", Text),
    Column("created_by", Integer),
)

form_defs = Table(
    "form_defs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("form_id", Integer, ForeignKey(forms.c.id), nullable=False),
    Column("version", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Column("md5", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("schema", JSONB, nullable=False),
    Column("source_sha256", Text),
    Column("source_type", Text),
    Column("key_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
)

form_attachments = Table(
    "form_attachments",
    metadata,
    Column("form_def_id", Integer, ForeignKey(form_defs.c.id), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("blob_sha256", Text),
    Column("blob_md5", Text),
    Column("blob_size", BigInteger),
    Column("content_type", Text),
    Column("updated_at", DateTime(timezone=True)),
)

conversions = Table(
    "conversions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("project_id", Integer, ForeignKey(projects.c.id), nullable=False),
    Column("actor_id", Integer),
    Column("source_sha256", Text, nullable=False),
    Column("source_type", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("xml_form_id", Text),
    Column("problem", JSONB),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

field_sensitivity = Table(
    "field_sensitivity",
    metadata,
    Column("form_id", Integer, ForeignKey(forms.c.id), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("sensitive", Boolean, nullable=False),
    Column("updated_by", Integer),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public", Text, nullable=False),
    Column("managed", Boolean, nullable=False),
    Column("hint", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
