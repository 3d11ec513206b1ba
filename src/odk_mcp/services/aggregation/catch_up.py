"""Catching up at start: a read model that is empty while submissions exist (the first start
after upgrading to a version with the read model, or a restore of the submissions alone) is
rebuilt in the background, once across processes (a session advisory lock), while the server
already serves. Anything else is left to `odk-mcp rebuild`."""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog
from sqlalchemy import select, text

from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation.adapters.tables import rows
from odk_mcp.services.aggregation.projection import LOCK_CLASS, Projector
from odk_mcp.services.submissions import submission_ids

log = structlog.get_logger("odk_mcp.aggregation")


class CatchUp:
    def __init__(self, db: Database, projector: Projector) -> None:
        self._db = db
        self._projector = projector
        self._task: asyncio.Task[int] | None = None

    async def needed(self) -> bool:
        """Whether the read model is empty although submissions are stored."""
        async with self._db.read() as conn:
            has_rows = (await conn.execute(select(rows.c.submission_id).limit(1))).first() is not None
            return not has_rows and bool(await submission_ids(conn, 0, 1))

    async def start(self) -> None:
        if await self.needed():
            self._task = asyncio.create_task(self._run(), name="aggregation-catch-up")

    async def _run(self) -> int:
        async with self._db.engine.connect() as conn:
            locked = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:cls, 0)"), {"cls": LOCK_CLASS})
            ).scalar_one()
            await conn.commit()
            if not locked:
                return 0  # another process is catching up
            try:
                if not await self.needed():
                    return 0
                log.info("read_model_catch_up_started")
                done = await self._projector.rebuild()
                log.info("read_model_catch_up_finished", submissions=done)
                return done
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:cls, 0)"), {"cls": LOCK_CLASS})
                await conn.commit()

    async def wait(self) -> int:
        """The catch-up's result (tests); 0 when none ran."""
        return await self._task if self._task is not None else 0

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
