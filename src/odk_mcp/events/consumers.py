"""Event consumers and the registry that subscribes them to the events they want.

A `Consumer` is a name, the event names it wants and an async handler. The worker calls the
handler with a connection in the transaction that also marks the delivery done: whatever
the handler writes to the database commits exactly once with it, or not at all. Side
effects outside the database (webhooks, files) may happen more than once and must be
idempotent, keyed by the event id.

`ConsumerRegistry.sync` writes the subscriptions the outbox trigger reads. A subscription
applies to events emitted after it exists: events already in the outbox are not backfilled
to a consumer that subscribes later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.events.tables import subscriptions
from odk_mcp.kernel.db import Database


@dataclass(frozen=True)
class Event:
    """One outbox row as a handler sees it."""

    id: int
    name: str
    payload: dict[str, Any]
    created_at: datetime


Handler = Callable[[AsyncConnection, Event], Awaitable[None]]
BatchHandler = Callable[[AsyncConnection, Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    """A named handler of some events; the name identifies its deliveries, so keep it stable.

    `handle_batch`, when given, does for several events (in claim order) exactly what `handle`
    does for each, usually with a few set-based statements instead of a few per event: the
    worker calls it for all of a claimed batch's deliveries to this consumer in one savepoint,
    and if it raises, undoes it and falls back to `handle`, event by event, so that one bad
    event fails only its own delivery.
    """

    name: str
    events: frozenset[str]
    handle: Handler
    handle_batch: BatchHandler | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.events:
            raise ValueError("a consumer needs a name and at least one event")


class ConsumerRegistry:
    """The consumers a process knows; its workers claim only their deliveries."""

    def __init__(self, consumers: Iterable[Consumer] = ()) -> None:
        self._consumers: dict[str, Consumer] = {}
        for consumer in consumers:
            if consumer.name in self._consumers:
                raise ValueError(f"two consumers are named {consumer.name!r}")
            self._consumers[consumer.name] = consumer

    @property
    def names(self) -> list[str]:
        return sorted(self._consumers)

    def get(self, name: str) -> Consumer | None:
        return self._consumers.get(name)

    def __len__(self) -> int:
        return len(self._consumers)

    async def sync(self, db: Database) -> None:
        """Subscribe each consumer to its events and drop its subscriptions to other events.

        Subscriptions of consumers this registry does not know are left alone: another
        process (another service, another version during a rolling deploy) may own them.
        """
        if not self._consumers:
            return
        wanted = [(c.name, event) for c in self._consumers.values() for event in sorted(c.events)]
        async with db.transaction() as conn:
            await conn.execute(
                delete(subscriptions).where(
                    subscriptions.c.consumer.in_(self.names),
                    tuple_(subscriptions.c.consumer, subscriptions.c.event).not_in(wanted),
                )
            )
            await conn.execute(
                insert(subscriptions)
                .values([{"consumer": name, "event": event} for name, event in wanted])
                .on_conflict_do_nothing()
            )
