"""Table definitions of the `entities` schema (created by the `entities` migration branch)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="entities")

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("approval_required", Boolean, nullable=False),
    Column("owner_only", Boolean, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("live_entities", BigInteger, nullable=False),
    Column("created_by", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
)

properties = Table(
    "properties",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey(datasets.c.id), nullable=False),
    Column("name", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

entities = Table(
    "entities",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("dataset_id", Integer, ForeignKey(datasets.c.id), nullable=False),
    Column("uuid", Uuid(as_uuid=False), nullable=False),
    Column("label", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("conflict", Text),
    Column("creator_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
)

versions = Table(
    "versions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("entity_id", BigInteger, ForeignKey(entities.c.id), nullable=False),
    Column("version", Integer, nullable=False),
    Column("base_version", Integer),
    Column("label", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("data_received", JSONB, nullable=False),
    Column("conflicting_properties", ARRAY(Text)),
    Column("conflict", Text),
    Column("resolved", Boolean, nullable=False),
    Column("creator_id", Integer),
    Column("user_agent", Text),
    Column("source", JSONB, nullable=False),
    Column("branch_id", Uuid(as_uuid=False)),
    Column("trunk_version", Integer),
    Column("branch_base_version", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

form_defs = Table(
    "form_defs",
    metadata,
    Column("form_def_id", Integer, primary_key=True),
    Column("entity_path", Text, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("form_name", Text),
    Column("dataset_id", Integer, ForeignKey(datasets.c.id)),
    Column("actions", ARRAY(Text), nullable=False),
    Column("spec_version", Text),
    Column("saveto", JSONB, nullable=False),
    Column("problem", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

submission_outcomes = Table(
    "submission_outcomes",
    metadata,
    Column("submission_id", BigInteger, primary_key=True),
    Column("instance_id", Text, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("dataset_id", Integer, ForeignKey(datasets.c.id), primary_key=True),
    Column("entity_uuid", Uuid(as_uuid=False)),
    Column("outcome", Text, nullable=False),
    Column("problem", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True)),
)

backlog = Table(
    "backlog",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("submission_id", BigInteger, nullable=False),
    Column("instance_id", Text, nullable=False),
    Column("project_id", Integer, nullable=False),
    Column("xml_form_id", Text, nullable=False),
    Column("dataset_id", Integer, ForeignKey(datasets.c.id), nullable=False),
    Column("entity_uuid", Uuid(as_uuid=False), nullable=False),
    Column("branch_id", Uuid(as_uuid=False)),
    Column("branch_base_version", Integer),
    Column("held_at", DateTime(timezone=True), nullable=False),
)
