"""The columnar cache's files and PostgreSQL reads (blocking; run in worker threads).

Imported on first use only: it loads Polars, PyArrow and a blocking psycopg connection.
See `columns.py` for the design. Every statement here is composed with psycopg's `sql`
module; the only SQL text from elsewhere is the `$filter` selection, rendered by the
aggregation compiler with literal binds.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from odk_mcp.kernel.copy_out import libpq_url
from odk_mcp.services.aggregation.columns import (
    META,
    REPEAT_META,
    ROOT,
    CacheSpec,
    Request,
    TableSpec,
    number_column,
    text_column,
    time_column,
)

MANIFEST = "manifest.json"
BATCH_BYTES = 32 * 1024 * 1024
# jsonb_to_record reads each row's JSON once; past this many fields its column list grows
# beyond what one row may hold, and one `data -> key` per field is used instead.
RECORD_MAX_FIELDS = 600
_SNAPSHOT = re.compile(r"^\d+:\d+:(\d+(,\d+)*)?$")
_ARROW: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
}

Manifest = dict[str, Any]


# --- files -------------------------------------------------------------------------------


def load_manifest(directory: Path) -> Manifest | None:
    try:
        found: Manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    return found


def _write_manifest(directory: Path, manifest: Manifest) -> None:
    """Atomically: a reader sees the old manifest or the new one, never a partial file."""
    temporary = directory / f".{MANIFEST}.{uuid.uuid4().hex}"
    with open(temporary, "w") as out:
        json.dump(manifest, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, directory / MANIFEST)


def _cleanup(directory: Path, manifest: Manifest) -> None:
    """Delete data files neither this manifest nor its predecessor names (a reader in another
    process may still be opening the predecessor's; it retries if they vanish later)."""
    keep = set(manifest["tables"].values()) | set(manifest.get("previous", []))
    for entry in directory.iterdir():
        if (
            (entry.suffix == ".parquet" and entry.name not in keep)
            or entry.name.startswith(f".{MANIFEST}.")
            or entry.name.endswith(".partial")
        ):
            entry.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(directory: Path, blocking: bool = True) -> Iterator[bool]:
    """An exclusive lock across threads and processes on one form's directory."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- SQL ---------------------------------------------------------------------------------


def _connect(url: str, snapshot_id: str | None = None) -> psycopg.Connection[Any]:
    """A read-only REPEATABLE READ connection: every statement sees one snapshot (the
    exported snapshot `snapshot_id` of another transaction, when given)."""
    # UTC, as the server's own connections: a date-time without an offset is read in it.
    conn = psycopg.connect(libpq_url(url), options="-c timezone=UTC")
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    if snapshot_id is not None:
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
    return conn


class StaleSnapshot(Exception):
    """The files were written at a snapshot newer than the one a read must answer at."""


def _parts(snapshot: str) -> tuple[int, set[int]]:
    _xmin, xmax, xip = snapshot.split(":")
    return int(xmax), {int(x) for x in xip.split(",") if x}


def contains(newer: str, older: str) -> bool:
    """Whether every transaction visible in snapshot `older` is visible in `newer`."""
    older_xmax, older_xip = _parts(older)
    newer_xmax, newer_xip = _parts(newer)
    return older_xmax <= newer_xmax and all(x in older_xip for x in newer_xip if x < older_xmax)


def _snapshot(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
    assert row is not None
    snapshot = str(row[0])
    if not _SNAPSHOT.match(snapshot):
        raise ValueError(f"unexpected snapshot text {snapshot!r}")
    return snapshot


def _changed(alias: str, spec: CacheSpec, snapshot: str) -> sql.Composed:
    """Rows of the form written by a transaction the snapshot did not see."""
    xmin = snapshot.split(":", 1)[0]
    column = sql.SQL("{}.change_xid").format(sql.Identifier(alias))
    return sql.SQL(
        "{a}.form_id = {form} AND {a}.draft = {draft} AND {c} >= {xmin}::xid8"
        " AND NOT pg_visible_in_snapshot({c}, {snap}::pg_snapshot)"
    ).format(
        a=sql.Identifier(alias),
        form=sql.Literal(spec.form_id),
        draft=sql.Literal(spec.draft),
        c=column,
        xmin=sql.Literal(xmin),
        snap=sql.Literal(snapshot),
    )


def _select(
    spec: CacheSpec, table: TableSpec, columns: list[str], changed_since: str | None
) -> tuple[sql.Composed, list[tuple[str, pa.DataType]]]:
    """The SELECT producing `columns` of a cached table (only rows changed since a snapshot,
    when given), and the Arrow type of each."""
    root = table.path == ROOT
    alias = sql.Identifier("r" if root else "x")
    meta = {name: (expression, kind) for name, expression, kind in (META if root else REPEAT_META)}
    by_text = {text_column(p): p for p, _ in table.fields}
    by_number = {number_column(p): p for p, numeric in table.fields if numeric}
    by_time = {time_column(p): (p, kind) for p, kind in table.temporal}
    wanted = list(
        dict.fromkeys(by_text.get(c) or by_number.get(c) or by_time[c][0] for c in columns if c not in meta)
    )
    # jsonb_to_record reads (and decompresses) each row's JSON once for every field.
    use_record = 0 < len(wanted) <= RECORD_MAX_FIELDS
    value = {
        path: (
            sql.SQL("a.{}").format(sql.Identifier(path))
            if use_record
            else sql.SQL("({}.data -> {})").format(alias, sql.Literal(path))
        )
        for path in wanted
    }
    items: list[sql.Composable] = []
    types: list[tuple[str, pa.DataType]] = []
    for name in columns:
        if name in meta:
            items.append(sql.SQL(meta[name][0]))
            types.append((name, _ARROW[meta[name][1]]))
        elif name in by_text:
            items.append(sql.SQL("{} #>> '{{}}'").format(value[by_text[name]]))
            types.append((name, pa.string()))
        elif name in by_number:
            v = value[by_number[name]]
            items.append(sql.SQL("CASE WHEN jsonb_typeof({v}) = 'number' THEN ({v})::float8 END").format(v=v))
            types.append((name, pa.float64()))
        else:
            path, kind = by_time[name]
            items.append(_time(value[path], kind))
            types.append((name, pa.int64()))
    form = sql.SQL("{a}.form_id = {f} AND {a}.draft = {d}").format(
        a=alias, f=sql.Literal(spec.form_id), d=sql.Literal(spec.draft)
    )
    source: sql.Composable
    if root:
        source = sql.SQL("aggregation.rows r")
        where = form
        if changed_since is not None:
            where = sql.SQL("{} AND {}").format(where, _changed("r", spec, changed_since))
    else:
        source = sql.SQL("aggregation.repeat_rows x")
        where = sql.SQL("{} AND x.repeat_path = {}").format(form, sql.Literal(table.path))
        if changed_since is not None:
            where = sql.SQL(
                "{} AND x.submission_id IN (SELECT r.submission_id FROM aggregation.rows r WHERE {})"
            ).format(where, _changed("r", spec, changed_since))
    if use_record:
        keyed = sql.SQL(", ").join(sql.SQL("{} jsonb").format(sql.Identifier(p)) for p in wanted)
        source = sql.SQL("{} CROSS JOIN LATERAL jsonb_to_record({}.data) AS a({})").format(
            source, alias, keyed
        )
    statement = sql.SQL("SELECT {} FROM {} WHERE {}").format(sql.SQL(", ").join(items), source, where)
    return statement, types


def _time(value: sql.Composable, kind: str) -> sql.Composed:
    """A date as days since 1970-01-01, a dateTime as microseconds since the epoch, when
    PostgreSQL reads the text as one (and it is finite); nested CASEs: the casts run only on
    valid input."""
    text = sql.SQL("({} #>> '{{}}')").format(value)
    if kind == "date":
        return sql.SQL(
            "CASE WHEN pg_input_is_valid({t}, 'date') THEN CASE WHEN isfinite({t}::date)"
            " THEN {t}::date - DATE '1970-01-01' END END"
        ).format(t=text)
    return sql.SQL(
        "CASE WHEN pg_input_is_valid({t}, 'timestamptz') THEN CASE WHEN isfinite({t}::timestamptz)"
        " THEN (extract(epoch FROM {t}::timestamptz) * 1000000)::int8 END END"
    ).format(t=text)


def _parse(buffer: bytes, types: list[tuple[str, pa.DataType]]) -> pa.Table:
    """COPY's CSV as an Arrow table: NULL is an unquoted empty field, "" a quoted one."""
    schema = pa.schema(types)
    if not buffer:
        return schema.empty_table()
    names = [n for n, _ in types]
    return pacsv.read_csv(
        io.BytesIO(buffer),
        read_options=pacsv.ReadOptions(column_names=names, block_size=8 * 1024 * 1024),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict(types),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )


def _copy(conn: psycopg.Connection[Any], statement: sql.Composable) -> Iterator[bytes]:
    """The CSV of a SELECT, in pieces of about BATCH_BYTES that end at row boundaries."""
    buffer = bytearray()
    with (
        conn.cursor() as cursor,
        cursor.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(statement)) as copy,
    ):
        for data in copy:
            buffer += data
            if len(buffer) >= BATCH_BYTES:
                yield bytes(buffer)
                buffer.clear()
    yield bytes(buffer)


def _frame(
    conn: psycopg.Connection[Any], statement: sql.Composable, types: list[tuple[str, pa.DataType]]
) -> pl.DataFrame:
    tables = [_parse(piece, types) for piece in _copy(conn, statement)]
    frame = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _ids(conn: psycopg.Connection[Any], statement: sql.Composable) -> pl.Series:
    frame = _frame(conn, statement, [("submission_id", pa.int64())])
    return frame["submission_id"]


def _deleted(conn: psycopg.Connection[Any], spec: CacheSpec, snapshot: str) -> pl.Series:
    """Submissions whose rows were deleted (purged) since the snapshot (tombstones carry no
    draft flag; submission ids are unique, so a draft's tombstone removes nothing here).
    Raises Truncated when the table was truncated since."""
    xmin = snapshot.split(":", 1)[0]
    statement = sql.SQL(
        "SELECT d.submission_id FROM aggregation.row_deletions d WHERE d.form_id IN ({}, -1) AND"
        " d.change_xid >= {}::xid8 AND NOT pg_visible_in_snapshot(d.change_xid, {}::pg_snapshot)"
    ).format(sql.Literal(spec.form_id), sql.Literal(xmin), sql.Literal(snapshot))
    found = _ids(conn, statement)
    if (found == -1).any():
        raise Truncated(snapshot)
    return found


def _merged(path: Path, columns: list[str], delta: pl.DataFrame, dropped: pl.Series) -> pl.LazyFrame:
    """The file's rows minus the changed and deleted submissions, plus the changed rows."""
    frame = pl.scan_parquet(path).select(columns)
    if dropped.len():
        frame = frame.filter(~pl.col("submission_id").is_in(dropped.implode()))
    if delta.height:
        frame = pl.concat([frame, delta.lazy()], how="vertical_relaxed")
    return frame


class Truncated(Exception):
    """The read model was truncated after the files were written: they must be rebuilt."""


# --- building, reading, compacting ---------------------------------------------------------


def _file_name(spec: CacheSpec, table: TableSpec, generation: str) -> str:
    index = [t.path for t in spec.tables].index(table.path)
    return f"{'root' if table.path == ROOT else f'repeat{index}'}-{generation}.parquet"


def _new_manifest(
    spec: CacheSpec, snapshot: str, files: dict[str, str], rows: int, previous: Manifest | None
) -> Manifest:
    return {
        "signature": spec.signature,
        "snapshot": snapshot,
        "tables": files,
        "rows": rows,
        "written": datetime.now(UTC).isoformat(),
        "previous": sorted(previous["tables"].values()) if previous else [],
    }


def build(url: str, directory: Path, spec: CacheSpec, only_if_stale: bool = False) -> Manifest:
    """Write every table of the form from the read model at one snapshot (COPY, streamed
    into Parquet row groups: memory stays bounded by BATCH_BYTES)."""
    with _locked(directory):
        existing = load_manifest(directory)
        if only_if_stale and existing is not None and existing["signature"] == spec.signature:
            return existing  # another thread or process built it while this one waited
        generation = uuid.uuid4().hex[:12]
        files: dict[str, str] = {}
        root_rows = 0
        with _connect(url) as conn:
            snapshot = _snapshot(conn)
            for table in spec.tables:
                statement, types = _select(spec, table, table.columns(), None)
                name = _file_name(spec, table, generation)
                partial = directory / (name + ".partial")
                count = 0
                with pq.ParquetWriter(partial, pa.schema(types), compression="snappy") as writer:
                    for piece in _copy(conn, statement):
                        part = _parse(piece, types)
                        count += part.num_rows
                        writer.write_table(part)
                os.replace(partial, directory / name)
                files[table.path] = name
                if table.path == ROOT:
                    root_rows = count
        manifest = _new_manifest(spec, snapshot, files, root_rows, existing)
        _write_manifest(directory, manifest)
        _cleanup(directory, manifest)
        return manifest


def _current(url: str, directory: Path, spec: CacheSpec) -> Manifest:
    manifest = load_manifest(directory)
    if manifest is None or manifest["signature"] != spec.signature:
        manifest = build(url, directory, spec, only_if_stale=True)
    return manifest


def read(
    url: str, directory: Path, request: Request, snapshot_id: str | None = None
) -> tuple[dict[str, pl.DataFrame], tuple[int, int]]:
    """The asked frames as of one snapshot (a new one, or the exported `snapshot_id`); also
    (rows changed since the files, rows in them) for deciding on compaction. Raises
    StaleSnapshot when the files are newer than an exported snapshot (the caller retries)."""
    for attempt in range(3):
        manifest = _current(url, directory, request.spec)
        try:
            return _read(url, directory, request, manifest, snapshot_id)
        except FileNotFoundError:
            if attempt == 2:
                raise
        except Truncated:
            build(url, directory, request.spec)
    raise AssertionError("unreachable")


def ensure(url: str, directory: Path, spec: CacheSpec) -> None:
    """Build the form's files unless current ones exist."""
    _current(url, directory, spec)


def _read(
    url: str, directory: Path, request: Request, manifest: Manifest, snapshot_id: str | None
) -> tuple[dict[str, pl.DataFrame], tuple[int, int]]:
    spec = request.spec
    since = str(manifest["snapshot"])
    root_spec = spec.table(ROOT)
    root_columns = list(dict.fromkeys(["submission_id", "deleted", *request.columns.get(ROOT, [])]))
    repeats = [t for t in request.columns if t != ROOT]
    with _connect(url, snapshot_id) as conn:
        if snapshot_id is not None and not contains(_snapshot(conn), since):
            raise StaleSnapshot(since)
        statement, types = _select(spec, root_spec, root_columns, since)
        delta = _frame(conn, statement, types)
        dropped = pl.concat([delta["submission_id"], _deleted(conn, spec, since)])
        repeat_deltas = {}
        for path in repeats:
            table = spec.table(path)
            columns = list(dict.fromkeys(["submission_id", *request.columns[path]]))
            statement, types = _select(spec, table, columns, since)
            repeat_deltas[path] = _frame(conn, statement, types)
    root = _merged(directory / manifest["tables"][ROOT], root_columns, delta, dropped)
    if request.selected is not None:
        selected = pl.Series("submission_id", request.selected, dtype=pl.Int64)
        root = root.filter(pl.col("submission_id").is_in(selected.implode()))
    elif not request.include_deleted:
        root = root.filter(~pl.col("deleted"))
    wanted = {ROOT: root}
    for path in repeats:
        columns = list(dict.fromkeys(["submission_id", *request.columns[path]]))
        wanted[path] = _merged(directory / manifest["tables"][path], columns, repeat_deltas[path], dropped)
    # One plan: the selection is pushed into the Parquet scans, so nothing is copied twice.
    roots = pl.collect_all([root, *(wanted[p] for p in repeats)])
    ids = roots[0]["submission_id"]
    out: dict[str, pl.DataFrame] = {}
    if ROOT in request.columns:
        out[ROOT] = roots[0].select(request.columns[ROOT])
    for path, frame in zip(repeats, roots[1:], strict=True):
        out[path] = frame.filter(pl.col("submission_id").is_in(ids.implode())).select(request.columns[path])
    return out, (delta.height, int(manifest["rows"]))


def compact(url: str, directory: Path, spec: CacheSpec) -> None:
    """Rewrite the files with the rows changed since they were written (row group by row
    group: memory stays bounded). Skipped when another thread or process holds the lock."""
    with _locked(directory, blocking=False) as got:
        if not got:
            return
        manifest = load_manifest(directory)
        if manifest is None or manifest["signature"] != spec.signature:
            return
        since = str(manifest["snapshot"])
        generation = uuid.uuid4().hex[:12]
        files: dict[str, str] = {}
        root_rows = 0
        with _connect(url) as conn:
            snapshot = _snapshot(conn)
            try:
                gone = _deleted(conn, spec, since)
            except Truncated:
                return  # the next read rebuilds
            dropped: pl.Series | None = None
            for table in spec.tables:
                statement, types = _select(spec, table, table.columns(), since)
                delta = _frame(conn, statement, types)
                if dropped is None:  # the root table comes first
                    dropped = pl.concat([delta["submission_id"], gone])
                name = _file_name(spec, table, generation)
                partial = directory / (name + ".partial")
                count = 0
                source = pq.ParquetFile(directory / manifest["tables"][table.path])
                with pq.ParquetWriter(partial, pa.schema(types), compression="snappy") as writer:
                    for batch in source.iter_batches(batch_size=131_072):
                        kept = pl.from_arrow(batch)
                        assert isinstance(kept, pl.DataFrame)
                        kept = kept.filter(~pl.col("submission_id").is_in(dropped.implode()))
                        count += kept.height
                        writer.write_table(kept.to_arrow().cast(pa.schema(types)))
                    count += delta.height
                    writer.write_table(delta.to_arrow().cast(pa.schema(types)))
                os.replace(partial, directory / name)
                files[table.path] = name
                if table.path == ROOT:
                    root_rows = count
        fresh = _new_manifest(spec, snapshot, files, root_rows, manifest)
        _write_manifest(directory, fresh)
        _cleanup(directory, fresh)
