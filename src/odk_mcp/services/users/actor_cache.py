"""Actors by credential, remembered for a few seconds so that authentication is not a query.

Every authenticated request used to read its session (with the actor's grants) from the
database: for ODK Collect posting submissions that was one of the three database round trips
per request. Entries live at most `ttl` seconds and never past the session's own expiry.

Revocation is immediate inside this process: every users-service change that can end or narrow
access (logout, revoking or deleting an app user, role changes, password changes, deleting or
promoting a user) runs through `changing()`, which empties the cache after the transaction. A
generation counter keeps a lookup that read the database before such a change from storing its
stale answer after it. Other processes sharing the database (a second server, the CLI) see a
change within `ttl` seconds. The permission check itself still runs on every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database


class ActorCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        # key -> (actor, monotonic deadline)
        self._entries: OrderedDict[tuple[str, str], tuple[Actor, float]] = OrderedDict()
        self.generation = 0

    def get(self, key: tuple[str, str]) -> Actor | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(
        self, key: tuple[str, str], actor: Actor, generation: int, expires_at: datetime | None = None
    ) -> None:
        """Remember `actor` unless the cache was invalidated since `generation` was read."""
        if self._ttl <= 0 or generation != self.generation:
            return
        now = time.monotonic()
        deadline = now + self._ttl
        if expires_at is not None:
            deadline = min(deadline, now + (expires_at.timestamp() - time.time()))
            if deadline <= now:
                return
        self._entries[key] = (actor, deadline)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()


@asynccontextmanager
async def changing(db: Database, cache: ActorCache) -> AsyncIterator[AsyncConnection]:
    """A transaction that may revoke or change access: the cache is emptied once it has ended
    (committed or not), so the next request of any affected credential reads the database."""
    try:
        async with db.transaction() as conn:
            yield conn
    finally:
        cache.invalidate()
