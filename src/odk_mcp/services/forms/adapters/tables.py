"""Table definitions of the `forms` schema (created by the `forms` migration branch)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, MetaData, Table, Text

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
)
