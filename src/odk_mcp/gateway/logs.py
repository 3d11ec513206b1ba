"""Structured logging (structlog): JSON lines by default, secrets never included."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_SECRET_KEYS = frozenset({"password", "token", "authorization", "cookie", "csrf", "secret", "database_url"})


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def _dumps(event: Any, **options: Any) -> str:
    # orjson writes an access-log line in a third of the standard library's time; what it
    # refuses (an integer beyond 64 bits, a key that is not a plain str) takes the slow path.
    try:
        return orjson.dumps(event, default=options.get("default")).decode()
    except TypeError:
        return json.dumps(event, **options)


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
