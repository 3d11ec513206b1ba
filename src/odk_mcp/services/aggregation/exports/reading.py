"""Reading an export's rows from the read model, newest submission first (ODK Central's export
order), a batch at a time.

Each batch is its own short query (keyset paging on `created_at, submission_id` backwards
along the `(form_id, draft, created_at, submission_id)` index): no transaction stays open
for the length of a download, and memory holds one batch. Repeat rows are read for one batch
of submissions at a time and put in that batch's order, then document order (`seq`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, Protocol

from sqlalchemy import Select, func, select, true, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel.db import Database
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.exports.domain.layout import Table
from odk_mcp.services.aggregation.exports.domain.rows import RepeatRow, RootRow, Row
from odk_mcp.services.aggregation.exports.writers.archive import MediaFile

_ROOT_COLUMNS = (
    rows.c.submission_id,
    rows.c.instance_id,
    rows.c.created_at,
    rows.c.submitter_id,
    rows.c.attachments_present,
    rows.c.attachments_expected,
    rows.c.review_state,
    rows.c.device_id,
    rows.c.edits,
    rows.c.form_version,
    rows.c.data,
    rows.c.status,
)


# The attachment name ODK Collect gives a form's audit log (an `audit` question, `meta/audit`).
CLIENT_AUDIT_FILE = "audit.csv"


class NameLookup(Protocol):
    async def display_names(self, actor_ids: Collection[int]) -> dict[int, str]: ...


class Attachment(Protocol):
    @property
    def submission_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...


class AttachmentLookup(Protocol):
    async def __call__(
        self, conn: AsyncConnection, submission_ids: Sequence[int]
    ) -> Sequence[Attachment]: ...


class ReadModelSource:
    """The rows of one export: a form's submissions selected by `conditions`."""

    def __init__(
        self,
        db: Database,
        conditions: Sequence[ColumnElement[bool]],
        names: NameLookup,
        batch_size: int = 2000,
    ) -> None:
        self._db = db
        self._conditions = list(conditions)
        self._names = names
        self._batch_size = batch_size
        self._known_names: dict[int, str] = {}

    async def _page(
        self, columns: Sequence[Any], position: tuple[Any, Any] | None, extra: Sequence[Any] = ()
    ) -> list[RowMapping]:
        stmt: Select[Any] = select(*columns).where(*self._conditions, *extra)
        if position is not None:
            stmt = stmt.where(tuple_(rows.c.created_at, rows.c.submission_id) < tuple_(*position))
        stmt = stmt.order_by(rows.c.created_at.desc(), rows.c.submission_id.desc()).limit(self._batch_size)
        async with self._db.read() as conn:
            return list((await conn.execute(stmt)).mappings().all())

    async def _pages(
        self, columns: Sequence[Any], extra: Sequence[Any] = ()
    ) -> AsyncIterator[list[RowMapping]]:
        position: tuple[Any, Any] | None = None
        while True:
            page = await self._page(columns, position, extra)
            if not page:
                return
            yield page
            if len(page) < self._batch_size:
                return
            position = (page[-1]["created_at"], page[-1]["submission_id"])

    async def submission_ids(self) -> AsyncIterator[list[int]]:
        """The selected submissions' ids, in export order, a batch at a time."""
        async for page in self._pages((rows.c.submission_id, rows.c.created_at)):
            yield [r["submission_id"] for r in page]

    async def _with_attachments(
        self, lookup: AttachmentLookup
    ) -> AsyncIterator[tuple[dict[int, str], Sequence[Attachment]]]:
        """The selected submissions the read model counts attachments for, a batch at a time
        in export order (id -> instanceID), with their present attachments."""
        extra = [rows.c.attachments_present > 0]
        async for page in self._pages((rows.c.submission_id, rows.c.instance_id, rows.c.created_at), extra):
            instance_ids = {r["submission_id"]: r["instance_id"] for r in page}
            async with self._db.read() as conn:
                found = await lookup(conn, list(instance_ids))
            yield instance_ids, found

    async def _submitter_names(self, page: Sequence[RowMapping]) -> dict[int, str]:
        wanted = {r["submitter_id"] for r in page if r["submitter_id"] is not None} - self._known_names.keys()
        if wanted:
            self._known_names.update(await self._names.display_names(wanted))
        return self._known_names

    async def batches(self, table: Table) -> AsyncIterator[Sequence[Row]]:
        if table.repeat_path is None:
            async for page in self._pages(_ROOT_COLUMNS):
                names = await self._submitter_names(page)
                yield [_root_row(r, names) for r in page]
            return
        async for ids in self.submission_ids():
            found = await self._repeat_rows(table.repeat_path, ids)
            if found:
                yield found

    async def _repeat_rows(self, repeat_path: str, ids: list[int]) -> list[Row]:
        stmt = select(
            repeat_rows.c.submission_id,
            repeat_rows.c.key,
            repeat_rows.c.parent_key,
            repeat_rows.c.seq,
            repeat_rows.c.data,
        ).where(repeat_rows.c.submission_id.in_(ids), repeat_rows.c.repeat_path == repeat_path)
        async with self._db.read() as conn:
            found = (await conn.execute(stmt)).mappings().all()
        order = {sid: i for i, sid in enumerate(ids)}
        ordered = sorted(found, key=lambda r: (order[r["submission_id"]], r["seq"]))
        return [
            RepeatRow(r["submission_id"], repeat_path, r["key"], r["parent_key"], r["data"]) for r in ordered
        ]

    async def media(self, lookup: AttachmentLookup) -> AsyncIterator[MediaFile]:
        """The attachments present on the selected submissions, in export order. Only
        submissions the read model counts attachments for are looked up."""
        async for instance_ids, found in self._with_attachments(lookup):
            order = {sid: i for i, sid in enumerate(instance_ids)}
            for item in sorted(found, key=lambda a: (order[a.submission_id], a.name)):
                yield MediaFile(item.name, item.sha256, item.size)

    async def client_audits(self, lookup: AttachmentLookup) -> AsyncIterator[tuple[str, MediaFile]]:
        """Each selected submission's client audit log (`audit.csv`, ODK Collect's record of how
        the form was filled) with the submission's instanceID, in export order."""
        async for instance_ids, found in self._with_attachments(lookup):
            audits = {a.submission_id: a for a in found if a.name == CLIENT_AUDIT_FILE}
            for submission_id, instance_id in instance_ids.items():
                audit = audits.get(submission_id)
                if audit is not None:
                    yield instance_id, MediaFile(audit.name, audit.sha256, audit.size)

    async def count(self) -> int:
        stmt = select(func.count()).select_from(rows).where(*self._conditions)
        async with self._db.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def select_values(self, paths_by_table: dict[str | None, list[str]]) -> dict[str, list[str]]:
        """The values seen in the selected submissions' select_multiple answers, by field path,
        sorted (what Central's `splitSelectMultiples` makes columns of)."""
        out: dict[str, list[str]] = {}
        async with self._db.read() as conn:
            for repeat_path, paths in paths_by_table.items():
                for path in paths:
                    out[path] = await self._values(conn, repeat_path, path)
        return out

    async def _values(self, conn: AsyncConnection, repeat_path: str | None, path: str) -> list[str]:
        source = rows if repeat_path is None else repeat_rows
        # A lateral set-returning function, joined explicitly (ON true) to the rows it splits.
        values = func.regexp_split_to_table(source.c.data.op("->>")(path), r"\s+").table_valued("v")
        values = values.render_derived(name="seen")
        stmt = select(values.c.v).select_from(source).join(values, true())
        if repeat_path is not None:
            stmt = stmt.join(rows, rows.c.submission_id == repeat_rows.c.submission_id).where(
                repeat_rows.c.repeat_path == repeat_path
            )
        stmt = stmt.where(*self._conditions, values.c.v != "").group_by(values.c.v).order_by(values.c.v)
        return [str(v) for v in (await conn.execute(stmt)).scalars().all()]


def _root_row(r: RowMapping, names: dict[int, str]) -> RootRow:
    submitter = r["submitter_id"]
    return RootRow(
        submission_id=r["submission_id"],
        instance_id=r["instance_id"],
        created_at=r["created_at"],
        data=r["data"],
        submitter_id=submitter,
        submitter_name=names.get(submitter) if submitter is not None else None,
        attachments_present=r["attachments_present"],
        attachments_expected=r["attachments_expected"],
        review_state=r["review_state"],
        device_id=r["device_id"],
        edits=r["edits"],
        form_version=r["form_version"],
        status=r["status"],
    )
