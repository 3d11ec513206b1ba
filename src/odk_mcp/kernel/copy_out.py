"""`COPY … TO STDOUT` at COPY speed from async code.

PostgreSQL sends one message per row, and psycopg's async cursor pays one event-loop turn per
message, which caps a big download far below what the server produces. Here a blocking psycopg
connection reads the COPY in its own thread and hands over pieces of `chunk_bytes` through a
small bounded queue (memory stays constant when the client reads slowly); the async side waits
for each piece in a worker thread. Closing the iterator (the client went away) stops the
thread and its connection.
Exports (CSV, csv.zip) and the entity list CSVs (entities service) read through it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import psycopg
from psycopg import sql

CHUNK_BYTES = 256 * 1024
_END = object()


def libpq_url(url: str) -> str:
    """A database URL as libpq takes it (without SQLAlchemy's `+driver` suffix)."""
    scheme, sep, rest = url.partition("://")
    return ("postgresql" + sep + rest) if scheme.startswith(("postgresql+", "postgres")) else url


class _Reader:
    def __init__(
        self, url: str, statement: str | sql.Composed, params: Mapping[str, Any] | None, chunk_bytes: int
    ) -> None:
        self._url = url
        self._statement = statement
        self._params = params
        self._chunk_bytes = chunk_bytes
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=4)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copy-out", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def next_piece(self) -> Any:
        """The next (bytes, rows) piece, `_END`, or raises what the copy raised (blocking)."""
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("the COPY thread ended without finishing") from None
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def _put(self, item: Any) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            with psycopg.connect(self._url) as conn:
                try:
                    self._copy(conn)
                except psycopg.errors.QueryCanceled:
                    if not self._stopped.is_set():
                        raise
        except BaseException as exc:  # noqa: BLE001 - handed to the reading side, which raises it
            self._put(exc)

    def _copy(self, conn: psycopg.Connection[Any]) -> None:
        with conn.cursor() as cursor, cursor.copy(self._statement, self._params) as copy:
            buffer = bytearray()
            rows = 0
            for data in copy:
                buffer += data
                rows += 1
                if len(buffer) >= self._chunk_bytes:
                    if not self._put((bytes(buffer), rows)):
                        # The reader went away: cancel the statement rather than let
                        # psycopg drain the rest of the COPY when the block exits.
                        conn.cancel_safe()
                        return
                    buffer.clear()
                    rows = 0
            if buffer and not self._put((bytes(buffer), rows)):
                return
        self._put(_END)


async def copy_out(
    url: str,
    statement: str | sql.Composed,
    params: Mapping[str, Any] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> AsyncIterator[tuple[bytes, int]]:
    """The output of a `COPY … TO STDOUT` statement as (bytes, rows in them) pieces."""
    reader = _Reader(libpq_url(url), statement, params, chunk_bytes)
    reader.start()
    try:
        while True:
            piece = await anyio.to_thread.run_sync(reader.next_piece)
            if piece is _END:
                return
            yield piece
    finally:
        reader.stop()
