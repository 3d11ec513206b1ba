"""JSON text for PostgreSQL parameters: many rows as one `jsonb` document.

Batched writes hand PostgreSQL one JSON array of row objects (read with `jsonb_to_recordset` or
`jsonb_populate_recordset`) instead of one array parameter per column: psycopg dumps each
array element by element in Python, which cost more than the database work for a batch of a
few rows, while orjson writes the whole document in microseconds.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import orjson


def _fallback(value: Any) -> Any:
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_text(document: Any) -> str:
    """`document` as JSON text: orjson, or the standard library for what orjson refuses (an
    integer beyond 64 bits, which a submission's `int` answer may be)."""
    try:
        return orjson.dumps(document).decode()
    except TypeError:
        return json.dumps(document, default=_fallback, ensure_ascii=False)
