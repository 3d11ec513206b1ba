"""Database access: one async engine and the unit of work (one transaction per command).

Services never commit on their own: a facade method opens `transaction()`, does all of its
writes (including audit and outbox rows) on that connection, and the commit happens when
the block exits without an error. Only then does the caller answer the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the psycopg 3 driver SQLAlchemy uses."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("database URL must be a postgresql:// URL")


class Database:
    def __init__(self, url: str, pool_size: int = 10, max_overflow: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
            pool_recycle=1800,
            connect_args={"options": "-c timezone=UTC"},
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A unit of work: commits on success, rolls back on any exception."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries only (still transactional, for a consistent snapshot)."""
        async with self.engine.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, SQLAlchemyError):
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
