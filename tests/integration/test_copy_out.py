"""`kernel.copy_out` on real PostgreSQL: all of a COPY arrives in bounded pieces with row counts,
errors reach the reader, and a reader that stops early (a client that went away) ends the COPY
and frees its connection."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from odk_mcp.kernel.copy_out import copy_out, libpq_url


async def test_a_copy_arrives_whole_in_bounded_pieces(database_url: str) -> None:
    pieces = [
        p
        async for p in copy_out(
            database_url,
            "COPY (SELECT g, %(word)s FROM generate_series(1, 5000) g) TO STDOUT",
            {"word": "x"},
            4096,
        )
    ]
    data = b"".join(chunk for chunk, _ in pieces)
    assert data.splitlines()[0] == b"1\tx" and len(data.splitlines()) == 5000
    assert sum(rows for _, rows in pieces) == 5000
    assert max(len(chunk) for chunk, _ in pieces) < 4096 + 100


async def test_errors_reach_the_reader(database_url: str) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        async for _ in copy_out(
            database_url, "COPY (SELECT 1 / (g - 3) FROM generate_series(1, 5) g) TO STDOUT"
        ):
            pass


async def test_stopping_early_ends_the_copy_and_its_connection(database_url: str) -> None:
    stream = copy_out(
        database_url, "COPY (SELECT g FROM generate_series(1, 50000000) g) TO STDOUT", None, 1024
    )
    first = await anext(stream)
    assert first[1] > 0
    await stream.aclose()  # the client went away

    def copying() -> bool:
        return any(t.name == "copy-out" for t in threading.enumerate())

    for _ in range(100):
        if not copying():
            break
        await asyncio.sleep(0.1)
    assert not copying()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for _ in range(50):  # the backend notices the cancel and the disconnect within moments
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE 'COPY (SELECT g FROM generate_series%'"
            ).fetchone()
            if busy is not None and busy[0] == 0:
                break
            await asyncio.sleep(0.1)
    assert busy is not None and busy[0] == 0
