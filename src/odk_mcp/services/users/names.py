"""Display names of actors by id, for read sides that show who submitted what (OData's
`__system/submitterName`). Names are not secrets; deleted actors keep theirs, as in Central."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from odk_mcp.kernel.db import Database
from odk_mcp.services.users.adapters.tables import actors


class ActorNames:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def display_names(self, actor_ids: Collection[int]) -> dict[int, str]:
        """The display name of each known actor among `actor_ids` (one indexed query)."""
        wanted = sorted({i for i in actor_ids if i is not None})
        if not wanted:
            return {}
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(actors.c.id, actors.c.display_name).where(actors.c.id.in_(wanted))
            )
            return {row.id: row.display_name for row in rows}
