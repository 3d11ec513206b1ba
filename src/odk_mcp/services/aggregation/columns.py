"""The per-form columnar cache: typed Parquet snapshots of a form's read-model tables, kept
current incrementally, so summaries and statistics read a few typed columns instead of
extracting fields from the JSON of every row on every request.

For each form (and draft), `<data dir>/columns/form-<id>-<published|draft>/` holds one
Parquet file per table (the root table and every repeat) and a `manifest.json` naming them
with the PostgreSQL MVCC snapshot they were read at. Every field becomes a text column
(`t:<path>`, what `data ->> path` gives) and, when the field is numeric in any version, also a
float column (`n:<path>`, the value when it is a JSON number, else null); root tables also
carry the submission metadata.

A read never trusts the files alone: in one REPEATABLE READ transaction it reads the rows
changed since the manifest's snapshot (the read model stamps each write with its transaction
id and leaves a tombstone per delete: migration a003), and, with a `$filter`, the ids the
filter selects (compiled and evaluated by PostgreSQL, exactly as OData and exports do); the
answer is the files minus the changed and deleted submissions plus the changed rows, i.e. the
read model as of that transaction. When the change set grows past a threshold, a background
thread rewrites the files (compaction); a form definition whose columns differ (a new version
adding or retyping fields) gets a fresh build. Builds and compactions take a file lock, files
are replaced atomically (new generation, then the manifest), so processes sharing the data
directory cooperate; a process that cannot share it simply builds its own.

Polars, PyArrow and psycopg's COPY work live in `columns_io` and load on first use.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio
from sqlalchemy import func, select, text

from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation.adapters.tables import rows
from odk_mcp.services.aggregation.reader import FormData, ReadModel
from odk_mcp.services.forms import Field

if TYPE_CHECKING:
    import polars as pl

FORMAT_VERSION = 2
TEMPORAL_TYPES = frozenset({"date", "dateTime"})
NUMERIC_TYPES = frozenset({"int", "decimal"})
SKIPPED_TYPES = frozenset({"structure", "repeat"})
ROOT = ""  # the root table's key in a manifest (repeat tables use their path)

ArrowKind = Literal["int64", "float64", "string", "bool"]

# Root metadata columns: name, SQL over `aggregation.rows r`, type.
META: tuple[tuple[str, str, ArrowKind], ...] = (
    ("submission_id", "r.submission_id", "int64"),
    ("created_at", "(extract(epoch from r.created_at) * 1000000)::int8", "int64"),
    ("deleted", "r.deleted_at IS NOT NULL", "bool"),
    ("submitter_id", "r.submitter_id", "int64"),
    ("device_id", "r.device_id", "string"),
    ("form_version", "r.form_version", "string"),
    ("instance_id", "r.instance_id", "string"),
    ("version_id", "r.version_id", "int64"),
)
REPEAT_META: tuple[tuple[str, str, ArrowKind], ...] = (
    ("submission_id", "x.submission_id", "int64"),
    ("seq", "x.seq", "int64"),
)


def text_column(path: str) -> str:
    """The cache column holding a field's answer as text (`data ->> path`)."""
    return "t:" + path


def number_column(path: str) -> str:
    """The cache column holding a numeric field's answer when it is a JSON number."""
    return "n:" + path


def time_column(path: str) -> str:
    """The cache column holding a date (days since 1970-01-01) or dateTime (microseconds since
    the epoch) answer as PostgreSQL reads it (`pg_input_is_valid`, then the cast), else null."""
    return "d:" + path


@dataclass(frozen=True)
class TableSpec:
    """One cached table: its repeat path (ROOT for the root table) and its fields."""

    path: str
    fields: tuple[tuple[str, bool], ...]  # (field path, has a number column)
    temporal: tuple[tuple[str, str], ...] = ()  # (field path, "date" | "dateTime")

    def columns(self) -> list[str]:
        meta = META if self.path == ROOT else REPEAT_META
        out = [m[0] for m in meta]
        for path, numeric in self.fields:
            out.append(text_column(path))
            if numeric:
                out.append(number_column(path))
        out += [time_column(path) for path, _ in self.temporal]
        return out


@dataclass(frozen=True)
class CacheSpec:
    """What a form's cache holds, from every field its versions ever had."""

    form_id: int
    draft: bool
    tables: tuple[TableSpec, ...]

    @classmethod
    def of(cls, form: FormData) -> CacheSpec:
        fields: list[Field] = [f for f in form.all_fields if f.type not in SKIPPED_TYPES]
        repeats = [f.path for f in form.all_fields if f.type == "repeat"]
        tables = [
            TableSpec(
                path,
                tuple((f.path, f.type in NUMERIC_TYPES) for f in fields if (f.repeat or ROOT) == path),
                tuple(
                    (f.path, f.type)
                    for f in fields
                    if (f.repeat or ROOT) == path and f.type in TEMPORAL_TYPES
                ),
            )
            for path in [ROOT, *repeats]
        ]
        return cls(form.form_id, form.draft, tuple(tables))

    @property
    def signature(self) -> str:
        shape = [FORMAT_VERSION, [[t.path, list(t.fields), list(t.temporal)] for t in self.tables]]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()

    def table(self, path: str) -> TableSpec:
        for candidate in self.tables:
            if candidate.path == path:
                return candidate
        raise KeyError(path)

    @property
    def directory_name(self) -> str:
        return f"form-{self.form_id}-{'draft' if self.draft else 'published'}"


@dataclass(frozen=True)
class Request:
    """What one read needs: per table, the cache columns; which submissions."""

    spec: CacheSpec
    columns: Mapping[str, Sequence[str]]
    selected: Sequence[int] | None  # the submissions a `$filter` selected
    include_deleted: bool


class ColumnCache:
    """Typed, column-projected frames of a form's read model (see the module docstring).

    `compact_rows` / `compact_fraction`: a background rewrite starts when the rows changed
    since the files were written exceed max(compact_rows, compact_fraction * rows in them).
    """

    def __init__(
        self,
        read_model: ReadModel,
        directory: Path,
        compact_rows: int = 2_000,
        compact_fraction: float = 0.01,
    ) -> None:
        self._read_model = read_model
        self._db: Database = read_model.db
        self.directory = directory
        self.compact_rows = compact_rows
        self.compact_fraction = compact_fraction
        self._compacting: set[str] = set()
        self._guard = threading.Lock()
        self._threads: list[threading.Thread] = []

    async def frames(
        self,
        form: FormData,
        columns: Mapping[str, Sequence[str]],
        odata_filter: str | None = None,
        include_deleted: bool = False,
    ) -> dict[str, pl.DataFrame]:
        """Per table (ROOT or a repeat path), a frame of the asked cache columns over the
        selected submissions (for a repeat: the instances of those submissions), all as of
        one transaction. The actor's access was checked when `form` was obtained."""
        spec = CacheSpec.of(form)
        for table, wanted in columns.items():
            known = set(spec.table(table).columns())
            unknown = [c for c in wanted if c not in known]
            if unknown:
                raise KeyError(f"no cache columns {unknown} in table {table!r}")
        from odk_mcp.services.aggregation import columns_io

        directory = self.directory / spec.directory_name
        url = self._db.url
        if not odata_filter:
            request = Request(spec, columns, None, include_deleted)
            frames, changed = await anyio.to_thread.run_sync(lambda: columns_io.read(url, directory, request))
            self._maybe_compact(spec, changed)
            return frames
        conditions = self._read_model.submission_conditions(form, odata_filter, include_deleted)
        await anyio.to_thread.run_sync(lambda: columns_io.ensure(url, directory, spec))
        for attempt in range(3):
            # PostgreSQL evaluates the filter (as for OData and exports) in a REPEATABLE READ
            # transaction whose snapshot the cache's read then imports: one state throughout.
            async with self._db.read() as conn:
                await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
                exported = str((await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one())
                found = (
                    await conn.execute(select(func.array_agg(rows.c.submission_id)).where(*conditions))
                ).scalar_one()
                request = Request(spec, columns, list(found or []), include_deleted)
                try:
                    frames, changed = await anyio.to_thread.run_sync(
                        columns_io.read, url, directory, request, exported
                    )
                except columns_io.StaleSnapshot:
                    if attempt == 2:
                        raise
                    continue
            self._maybe_compact(spec, changed)
            return frames
        raise AssertionError("unreachable")

    def _maybe_compact(self, spec: CacheSpec, changed: tuple[int, int]) -> None:
        delta, base = changed
        if delta <= max(self.compact_rows, self.compact_fraction * base):
            return
        key = spec.directory_name
        with self._guard:
            if key in self._compacting:
                return
            self._compacting.add(key)
        from odk_mcp.services.aggregation import columns_io

        def work() -> None:
            try:
                columns_io.compact(self._db.url, self.directory / key, spec)
            finally:
                with self._guard:
                    self._compacting.discard(key)

        thread = threading.Thread(target=work, name=f"columns-compact-{key}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    async def wait_idle(self) -> None:
        """Wait for background compactions to finish (tests, shutdown)."""
        for thread in list(self._threads):
            await anyio.to_thread.run_sync(thread.join)

    async def rebuild(self, form: FormData) -> None:
        """Rewrite a form's files from the read model now (tests, operators)."""
        spec = CacheSpec.of(form)
        from odk_mcp.services.aggregation import columns_io

        await anyio.to_thread.run_sync(
            lambda: columns_io.build(self._db.url, self.directory / spec.directory_name, spec)
        )
