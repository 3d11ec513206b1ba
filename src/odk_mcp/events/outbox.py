"""The outbox: domain events written in the same transaction as the change they describe.

Consumers (workers) read it after commit, so an event exists if and only if its change
was committed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events.tables import outbox


async def emit(conn: AsyncConnection, event: str, payload: dict[str, Any]) -> None:
    await conn.execute(insert(outbox).values(event=event, payload=payload, created_at=func.now()))
