"""Table definitions of the `users` schema (created by the `users` migration branch)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData(schema="users")

actors = Table(
    "actors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("email", Text),
    Column("password_hash", Text),
    Column("project_id", Integer),
    Column("created_by", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    Column("token_sealed", Text),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("actor_id", Integer, ForeignKey(actors.c.id), nullable=False),
    Column("csrf", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor_id", Integer, ForeignKey(actors.c.id), nullable=False),
    Column("role_id", Integer, nullable=False),
    Column("project_id", Integer),
    Column("form_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor_id", Integer, ForeignKey(actors.c.id), nullable=False),
    Column("name", Text, nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)

public_links = Table(
    "public_links",
    metadata,
    Column("actor_id", Integer, ForeignKey(actors.c.id), primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("once", Boolean, nullable=False),
)
