"""Alembic environment: runs migrations over the URL the caller put in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

config = context.config
url = config.attributes["database_url"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    # Several server processes may start at once: only one migrates at a time.
    connection.execute(text("SELECT pg_advisory_lock(8383001)"))
    connection.commit()
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.execute(text("SELECT pg_advisory_unlock(8383001)"))
    connection.commit()
engine.dispose()
