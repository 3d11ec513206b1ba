"""Applying the Alembic migrations: one branch per service schema, all heads at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from odk_mcp.kernel.db import async_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    versions = MIGRATIONS_DIR / "versions"
    locations = " ".join(str(p) for p in sorted(versions.iterdir()) if p.is_dir() and p.name != "__pycache__")
    config.set_main_option("version_locations", locations)
    config.set_main_option("path_separator", "space")
    config.attributes["database_url"] = async_url(url)
    return config


def upgrade(url: str) -> None:
    """Bring every service schema to its newest revision."""
    command.upgrade(alembic_config(url), "heads")


def pending(url: str) -> set[str]:
    """Head revisions not yet applied (empty when the database is current)."""
    config = alembic_config(url)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    engine = create_engine(async_url(url))
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    return heads - current
