"""kernel.pgjson: batched rows go to PostgreSQL as one JSON document, written by orjson (the
standard library only for what orjson refuses)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson

from odk_mcp.kernel.pgjson import json_text
from odk_mcp.services.aggregation import bulk, projection


def test_read_model_rows_take_the_fast_path() -> None:
    # SQLAlchemy names columns with a str subclass, which orjson refuses as a dict key: the
    # read model's row dicts fell back to the standard library for every batch.
    for columns in (projection._ROW_COLUMNS, bulk._ROW_COLUMNS, bulk._REPEAT_COLUMNS):
        row = dict.fromkeys(columns, 1)
        assert all(type(name) is str for name in row)
        assert orjson.loads(orjson.dumps(row)) == row


def test_what_orjson_refuses_still_becomes_json() -> None:
    document = [{"n": 2**70, "at": datetime(2026, 11, 26, 12, 0, tzinfo=UTC), "text": 'Zoë "q" \\'}]
    assert json.loads(json_text(document)) == [
        {"n": 2**70, "at": "2026-11-26T12:00:00+00:00", "text": 'Zoë "q" \\'}
    ]
    assert json.loads(json_text({"n": 5, "at": datetime(2026, 1, 2, tzinfo=UTC)})) == {
        "n": 5,
        "at": "2026-01-02T00:00:00+00:00",
    }
