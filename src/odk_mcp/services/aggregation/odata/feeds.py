"""The OData facade: service document, metadata and data documents of a form's feed.

`ODataFeeds.open(...)` does every check (permission, form, table, options, `$filter`,
`$select`) and counts before anything is sent, then `Feed.chunks()` streams the JSON document
batch by batch from the read model (constant memory at any size). Order is ODK Central's:
newest submission first (`created_at DESC, submission_id DESC`), repeat rows in document
order within their submission. Paging with `$top` answers `@odata.nextLink` carrying a
`$skiptoken` keyset cursor, so following it returns each row exactly once even while
submissions arrive (new ones sort before the cursor); with `$orderby` paging falls back to
`$skip`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson
from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.domain.naming import row_id
from odk_mcp.services.aggregation.odata.filters import compile_filter, compile_term
from odk_mcp.services.aggregation.odata.metadata import edmx, service_document
from odk_mcp.services.aggregation.odata.model import FormModel, Node, Table, build_model
from odk_mcp.services.aggregation.odata.options import Cursor, FeedOptions
from odk_mcp.services.aggregation.odata.paths import ResourcePath, parse_path
from odk_mcp.services.aggregation.odata.render import (
    Children,
    Plans,
    RenderContext,
    expanded,
    fill,
    system_of,
)
from odk_mcp.services.aggregation.odata.scopes import SYSTEM, repeat_scope, root_scope
from odk_mcp.services.aggregation.reader import FormData, ReadModel

BATCH = 1000
SYSTEM_NAMES = frozenset(name.split("/", 1)[1] for name in SYSTEM) | {"submitterName"}


class SubmitterNames(Protocol):
    """Display names of actors (the users service provides it)."""

    async def display_names(self, actor_ids: Collection[int]) -> dict[int, str]: ...


@dataclass(frozen=True)
class Selection:
    paths: frozenset[str] | None  # field paths to show (None: all)
    system: frozenset[str] | None  # __system properties to show (None: all; empty: none)
    parent_id: bool  # whether a repeat row shows its parent-join property


@dataclass
class Feed:
    """A data document ready to stream."""

    feeds: ODataFeeds
    model: FormModel
    table: Table
    options: FeedOptions
    statement: Select[Any]
    keyset: bool
    count: int | None
    context_url: str
    next_base: str
    query: Mapping[str, str]
    selection: Selection
    plans: Plans
    prefetched: list[tuple[Mapping[str, Any], dict[str, Any]]] | None = None

    async def prefetch(self) -> None:
        """Run the first query now, so that an error is an error response, not a cut stream."""
        if self.options.top == 0:
            return
        self._pending = self._batches()
        self.prefetched = await anext(self._pending, None)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield b'{"@odata.context":' + _json(self.context_url)
        if self.count is not None:
            yield b',"@odata.count":' + str(self.count).encode()
        yield b',"value":['
        sent = 0
        last: Mapping[str, Any] | None = None
        more = False
        pending = self._pending if self.prefetched is not None else None
        batches = [self.prefetched] if self.prefetched is not None else []

        async def every() -> AsyncIterator[list[tuple[Mapping[str, Any], dict[str, Any]]]]:
            for batch in batches:
                yield batch
            if pending is not None:
                async for batch in pending:
                    yield batch

        async for batch in every():
            parts: list[bytes] = []
            for row, entity in batch:
                if self.options.top is not None and sent >= self.options.top:
                    more = True
                    break
                parts.append(_json(entity))
                sent += 1
                last = row
            if parts:
                # One chunk per batch: a write per row costs more than the rows' JSON.
                yield (b"," if sent > len(parts) else b"") + b",".join(parts)
            if more:
                break
        yield b"]"
        if more and last is not None:
            yield b',"@odata.nextLink":' + _json(self._next_link(last, sent))
        yield b"}"

    _pending: AsyncIterator[list[tuple[Mapping[str, Any], dict[str, Any]]]] | None = None

    async def _batches(self) -> AsyncIterator[list[tuple[Mapping[str, Any], dict[str, Any]]]]:
        # One row more than asked tells whether a next page exists.
        wanted = None if self.options.top is None else self.options.top + 1
        fetched = 0
        position: Mapping[str, Any] | None = None
        while wanted is None or fetched < wanted:
            size = BATCH if wanted is None else min(BATCH, wanted - fetched)
            stmt = self.statement
            if not self.keyset:
                stmt = stmt.offset(self.options.skip + fetched)
            elif position is not None:
                stmt = stmt.where(self.feeds.after(self.table, _cursor_of(position, self.table)))
            elif self.options.skip:
                stmt = stmt.offset(self.options.skip)
            async with self.feeds.db.read() as conn:
                batch = list((await conn.execute(stmt.limit(size))).mappings().all())
            if not batch:
                return
            entities = await self.feeds.render(self, batch)
            yield list(zip(batch, entities, strict=True))
            fetched += len(batch)
            position = batch[-1]
            if len(batch) < size:
                return

    def _next_link(self, last: Mapping[str, Any], sent: int) -> str:
        params = {k: v for k, v in self.query.items() if k not in ("$skip", "$skiptoken")}
        if self.keyset:
            params["$skiptoken"] = _cursor_of(last, self.table).encode()
        else:
            params["$skip"] = str(self.options.skip + sent)
        return f"{self.next_base}?{urlencode(params)}"


def _json(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson is ~10x faster than the standard library on entities; it
    refuses integers beyond 64 bits (a stored value may be one), which take the slow path."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _cursor_of(row: Mapping[str, Any], table: Table) -> Cursor:
    if table.repeat_path is None:
        return Cursor(row["created_at"], row["submission_id"])
    return Cursor(row["submission_created_at"], row["submission_id"], row["seq"])


class ODataFeeds:
    def __init__(self, read_model: ReadModel, names: SubmitterNames, names_ttl: float = 60.0) -> None:
        self._read_model = read_model
        self._names = names
        # Display names change rarely; a page should not cost a users query each time.
        self._known_names: dict[int, tuple[float, str | None]] = {}
        self._names_ttl = names_ttl

    async def _display_names(self, actor_ids: Collection[int]) -> dict[int, str]:
        now = time.monotonic()
        missing = {i for i in actor_ids if self._known_names.get(i, (0.0, None))[0] < now}
        if missing:
            found = await self._names.display_names(missing)
            if len(self._known_names) > 10_000:
                self._known_names.clear()
            for actor_id in missing:
                self._known_names[actor_id] = (now + self._names_ttl, found.get(actor_id))
        out: dict[int, str] = {}
        for actor_id in actor_ids:
            name = self._known_names[actor_id][1]
            if name is not None:
                out[actor_id] = name
        return out

    @property
    def db(self) -> Any:
        return self._read_model.db

    async def _form(
        self, actor: Actor, project_id: int, xml_form_id: str, draft: bool
    ) -> tuple[FormData, FormModel]:
        form = await self._read_model.form(actor, project_id, xml_form_id, draft)
        return form, build_model(xml_form_id, form.fields)

    async def service_document(
        self, actor: Actor, project_id: int, xml_form_id: str, draft: bool, service_url: str
    ) -> dict[str, Any]:
        _, model = await self._form(actor, project_id, xml_form_id, draft)
        return service_document(model, service_url)

    async def metadata(self, actor: Actor, project_id: int, xml_form_id: str, draft: bool) -> bytes:
        _, model = await self._form(actor, project_id, xml_form_id, draft)
        return edmx(model)

    async def open(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        draft: bool,
        resource: str,
        options: FeedOptions,
        service_url: str,
        query: Mapping[str, str],
    ) -> Feed:
        """Check and count a data document request; the returned feed streams it."""
        form, model = await self._form(actor, project_id, xml_form_id, draft)
        path = parse_path(resource)
        table = model.tables.get(path.table)
        if table is None:
            raise Problem(problems.NOT_FOUND)
        if options.cursor is not None and options.orderby:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                "$skiptoken cannot be combined with $orderby.",
                {"field": "$skiptoken"},
            )
        selection = _selection(table, options.select)
        conditions = self._read_model.submission_conditions(form)
        if table.repeat_path is None:
            scope = root_scope(form.fields)
            stmt: Select[Any] = select(rows)
            order = [rows.c.created_at.desc(), rows.c.submission_id.desc()]
        else:
            scope = repeat_scope(form.fields, table.repeat_path)
            stmt = select(
                repeat_rows, rows.c.created_at.label("submission_created_at"), rows.c.instance_id
            ).join(rows, rows.c.submission_id == repeat_rows.c.submission_id)
            conditions += [
                repeat_rows.c.form_id == form.form_id,
                repeat_rows.c.draft == form.draft,
                repeat_rows.c.repeat_path == table.repeat_path,
            ]
            order = [rows.c.created_at.desc(), rows.c.submission_id.desc(), repeat_rows.c.seq.asc()]
        if path.instance_id is not None:
            conditions.append(rows.c.instance_id == path.instance_id)
        if options.filter:
            conditions.append(compile_filter(options.filter, scope))
        if options.orderby:
            order = [*_order_terms(options.orderby, scope), *order]
        stmt = stmt.where(*conditions)
        if path.instance_id is not None:
            await self._check_exists(form, path.instance_id)
        if path.parent_id is not None:
            stmt = stmt.where(repeat_rows.c.key.in_(await self._keys_under(stmt, path)))
        count = None
        if options.count:
            count_stmt = select(func.count()).select_from(stmt.order_by(None).subquery())
            async with self.db.read() as conn:
                count = int((await conn.execute(count_stmt)).scalar_one())
        if options.cursor is not None:
            stmt = stmt.where(self.after(table, options.cursor))
        feed = Feed(
            feeds=self,
            model=model,
            table=table,
            options=options,
            statement=stmt.order_by(*order),
            keyset=not options.orderby,
            count=count,
            context_url=f"{service_url}/$metadata#{table.name}",
            next_base=f"{service_url}/{resource.strip('/')}",
            query=query,
            selection=selection,
            plans=Plans(options.wkt, selection.paths),
        )
        await feed.prefetch()
        return feed

    async def _check_exists(self, form: FormData, instance_id: str) -> None:
        """404.1 unless the addressed submission is in the feed."""
        stmt = select(rows.c.submission_id).where(
            *self._read_model.submission_conditions(form), rows.c.instance_id == instance_id
        )
        async with self.db.read() as conn:
            if (await conn.execute(stmt)).first() is None:
                raise Problem(problems.NOT_FOUND)

    def after(self, table: Table, cursor: Cursor) -> ColumnElement[bool]:
        """Rows after the cursor in feed order (newest first, then document order)."""
        position = tuple_(rows.c.created_at, rows.c.submission_id)
        here = tuple_(cursor.created_at, cursor.submission_id)
        if table.repeat_path is None or cursor.seq is None:
            return position < here
        return or_(
            position < here,
            and_(
                rows.c.created_at == cursor.created_at,
                rows.c.submission_id == cursor.submission_id,
                repeat_rows.c.seq > cursor.seq,
            ),
        )

    async def _keys_under(self, stmt: Select[Any], path: ResourcePath) -> list[str]:
        """Keys of the addressed submission's rows of this table that lie under the repeat
        instance whose `__id` the path names (computed like Central's join ids)."""
        assert path.parent_property is not None
        depth = len(path.parent_property.split("-")) - 2  # key segments down to that instance
        async with self.db.read() as conn:
            candidates = (await conn.execute(stmt)).mappings().all()
        wanted = []
        for row in candidates:
            instance_id = row["instance_id"]
            segments = row["key"][len(instance_id) :].split("/")[1:]
            prefix = "/".join([instance_id, *segments[:depth]])
            if row_id(prefix, instance_id) == path.parent_id:
                wanted.append(row["key"])
        return wanted

    async def render(self, feed: Feed, batch: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The JSON entities of one batch of rows."""
        table = feed.table
        submission_ids = sorted({r["submission_id"] for r in batch})
        children = await self._children(feed, submission_ids)
        tables = {t.repeat_path: t.nodes for t in feed.model.tables.values() if t.repeat_path is not None}
        context = RenderContext(children, feed.options.expand, feed.options.wkt, tables, feed.plans)
        out: list[dict[str, Any]] = []
        if table.repeat_path is None:
            names = await self._display_names(
                {r["submitter_id"] for r in batch if r["submitter_id"] is not None}
            )
            for row in batch:
                entity: dict[str, Any] = {"__id": row["instance_id"]}
                system = feed.selection.system
                if system is None or system:
                    full = system_of(row, names)
                    entity["__system"] = (
                        full if system is None else {k: v for k, v in full.items() if k in system}
                    )
                fill(entity, table.nodes, row["data"], row["instance_id"], row["instance_id"], context)
                out.append(entity)
            return out
        for row in batch:
            instance_id = row["instance_id"]
            entity = expanded(row, instance_id, context)
            if feed.selection.parent_id and table.parent_property:
                entity[table.parent_property] = row_id(row["parent_key"], instance_id)
            out.append(entity)
        return out

    async def _children(self, feed: Feed, submission_ids: list[int]) -> Children:
        """Which rows of the batch have repeat instances under them (all of them, with
        `$expand=*`): one query over the batch's submissions."""
        children = Children()
        nested = [t.repeat_path for t in feed.model.tables.values() if t.repeat_path is not None]
        if not nested or not submission_ids:
            return children
        if feed.options.expand:
            stmt = select(repeat_rows).where(repeat_rows.c.submission_id.in_(submission_ids))
        else:
            stmt = (
                select(repeat_rows.c.parent_key, repeat_rows.c.repeat_path)
                .distinct()
                .where(repeat_rows.c.submission_id.in_(submission_ids), repeat_rows.c.ordinal == 1)
            )
        stmt = stmt.where(repeat_rows.c.repeat_path.in_(nested))
        if feed.options.expand:
            stmt = stmt.order_by(repeat_rows.c.submission_id, repeat_rows.c.repeat_path, repeat_rows.c.seq)
        async with self.db.read() as conn:
            for row in (await conn.execute(stmt)).mappings():
                children.add(row)
        return children


def _order_terms(orderby: str, scope: Any) -> list[Any]:
    terms = []
    for item in orderby.split(","):
        words = item.strip().rsplit(" ", 1)
        direction = "asc"
        expression = item.strip()
        if len(words) == 2 and words[1].lower() in ("asc", "desc"):
            expression, direction = words[0].strip(), words[1].lower()
        if not expression:
            raise Problem(problems.UNPARSEABLE_ODATA_EXPRESSION, "An empty $orderby term.")
        value = compile_term(expression, scope).sql
        terms.append(value.desc().nulls_last() if direction == "desc" else value.asc().nulls_first())
    return terms


def _selection(table: Table, select_items: tuple[str, ...] | None) -> Selection:
    if select_items is None:
        return Selection(None, None, True)
    paths: set[str] = set()
    system: set[str] = set()
    parent_id = False
    for item in select_items:
        if item == "__id":
            continue
        if table.repeat_path is None and item == "__system":
            system |= SYSTEM_NAMES
            continue
        if table.repeat_path is None and item.startswith("__system/") and item[9:] in SYSTEM_NAMES:
            system.add(item[9:])
            continue
        if table.parent_property is not None and item == table.parent_property:
            parent_id = True
            continue
        found = table.find(item)
        if found is None:
            trail_repeat = _through_repeat(table, item)
            if trail_repeat:
                raise Problem(problems.UNSUPPORTED_ODATA_SELECT_FIELD, details={"property": item})
            raise Problem(
                problems.PROPERTY_NOT_FOUND, f"Could not find a property named '{item}'.", {"property": item}
            )
        node, trail = found
        paths.update(n.path for n in trail)
        paths.update(_subtree(node))
    return Selection(frozenset(paths), frozenset(system), parent_id)


def _subtree(node: Node) -> list[str]:
    out = [node.path]
    for child in node.children:
        out.extend(_subtree(child))
    return out


def _through_repeat(table: Table, item: str) -> bool:
    """Whether a path runs into a nested repeat of this table (`hh/member/mname` at the root)."""
    nodes = table.nodes
    for part in item.split("/"):
        match = next((n for n in nodes if n.name == part), None)
        if match is None:
            return False
        if match.is_repeat:
            return True
        nodes = match.children
    return False
