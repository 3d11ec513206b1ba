"""What a long analysis tells its job while it runs, and how it runs off the event loop.

A `Progress` is called from the analysis thread (`progress(stage, done, total)`); the job's
heartbeat reads the latest values and stores them, so the analysis never waits on the
database to report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.loading import problem_of

T = TypeVar("T")


@dataclass
class Progress:
    stage: str = "queued"
    done: int = 0
    total: int | None = None

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        # One tuple assignment each: a reader on the event loop sees old or new values.
        self.stage, self.done, self.total = stage, done, total

    def to_json(self) -> dict[str, object]:
        return {"stage": self.stage, "done": self.done, "total": self.total}


async def in_thread(work: Callable[[], T]) -> T:
    """Run CPU-bound analysis in a worker thread; analysis errors become 400.60. A cancelled
    caller (a server stopping, its job going back to the queue) does not wait for the thread."""
    try:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except AnalysisError as error:
        raise problem_of(error) from error
