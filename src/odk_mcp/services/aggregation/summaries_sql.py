"""Per-question summaries of a form's data computed in SQL over the read model: the engine
used when no columnar cache is configured, and the reference the cache's answers are tested
against (they must be identical).

For the root table and each repeat table, three scans answer every question at once, each
reading every row's JSON once (`jsonb_to_record` into one column per question): one aggregate
row (answered counts, numeric mean/sd/min/max/quantiles, date ranges), one GROUPING SETS
query (single-choice counts and numeric histogram bins), one unpivot for multiple-choice
counts; plus submissions per day. Nothing is summarised row by row in
Python. The same `$filter` as OData and exports selects the submissions (a repeat question is
summarised over the repeat instances of the selected submissions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    String,
    case,
    cast,
    column,
    func,
    literal,
    null,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.domain.summary import (
    DATES,
    HISTOGRAM_BINS,
    NUMERIC,
    QUANTILES,
    UNSUMMARISED,
    choice_counts,
    histogram,
    is_select_one,
    numeric,
    question,
)
from odk_mcp.services.aggregation.reader import FormData, ReadModel
from odk_mcp.services.forms import Field


@dataclass(frozen=True)
class _Source:
    """Where one table's values come from: its data column, and the rows to read."""

    data: ColumnElement[Any]
    from_: Any
    conditions: list[ColumnElement[bool]]


class SqlSummaries:
    def __init__(self, read_model: ReadModel) -> None:
        self._read_model = read_model

    async def summarize_form(
        self, form: FormData, odata_filter: str | None = None, language: str | None = None
    ) -> dict[str, Any]:
        """The summary of a form's (filtered) submissions (the caller checked access)."""
        conditions = self._read_model.submission_conditions(form, odata_filter)
        questions: dict[str, dict[str, Any]] = {}
        fields = [f for f in form.fields if f.type not in UNSUMMARISED]
        async with self._read_model.db.read() as conn:
            # Quantiles and per-question groupings sort and hash in memory, not on disk.
            await conn.execute(text("SET LOCAL work_mem = '64MB'"))
            total = int(
                (await conn.execute(select(func.count()).select_from(rows).where(*conditions))).scalar_one()
            )
            day = cast(func.timezone("UTC", rows.c.created_at), Date)
            per_day = (
                await conn.execute(
                    select(day.label("day"), func.count().label("n"))
                    .where(*conditions)
                    .group_by(day)
                    .order_by(day)
                )
            ).all()
            for repeat_path in [None, *form.repeat_paths()]:
                own = [f for f in fields if f.repeat == repeat_path]
                if not own:
                    continue
                source = self._source(form, conditions, repeat_path)
                await self._summarise_table(conn, source, own, questions, language)
        ordered = [questions[f.path] for f in fields if f.path in questions]
        return {
            "xmlFormId": form.xml_form_id,
            "draft": form.draft,
            "filter": odata_filter,
            "submissions": total,
            "submissionsPerDay": [{"date": r.day.isoformat(), "count": int(r.n)} for r in per_day],
            "questions": ordered,
        }

    def _source(
        self, form: FormData, conditions: list[ColumnElement[bool]], repeat_path: str | None
    ) -> _Source:
        if repeat_path is None:
            return _Source(rows.c.data, rows, conditions)
        joined = repeat_rows.join(rows, rows.c.submission_id == repeat_rows.c.submission_id)
        return _Source(
            repeat_rows.c.data,
            joined,
            [
                *conditions,
                repeat_rows.c.form_id == form.form_id,
                repeat_rows.c.draft == form.draft,
                repeat_rows.c.repeat_path == repeat_path,
            ],
        )

    async def _summarise_table(
        self,
        conn: Any,
        source: _Source,
        fields: Sequence[Field],
        out: dict[str, dict[str, Any]],
        language: str | None,
    ) -> None:
        # Every question's value as a column of one derived table: `jsonb_to_record` reads
        # (and decompresses) each row's JSON once, where one `data -> key` per expression
        # would decompress it once per expression.
        record = (
            func.jsonb_to_record(source.data)
            .table_valued(*(column(f.path, JSONB) for f in fields))
            .render_derived("answers", with_types=True)
        )
        answers = (
            select(*(record.c[f.path].label(f"c{i}") for i, f in enumerate(fields)))
            .select_from(source.from_)
            .join(record, literal(True))
            .where(*source.conditions)
            .subquery("v")
        )
        cells = [answers.c[f"c{i}"] for i in range(len(fields))]
        aggregates: list[ColumnElement[Any]] = [func.count().label("n")]
        for i, f in enumerate(fields):
            cell = cells[i]
            aggregates.append(func.count().filter(func.jsonb_typeof(cell) != "null").label(f"a{i}"))
            if f.type in NUMERIC:
                number = _number_of(cell)
                aggregates += [
                    func.count(number).label(f"c{i}"),
                    func.avg(number).label(f"mean{i}"),
                    func.stddev_samp(number).label(f"sd{i}"),
                    func.min(number).label(f"min{i}"),
                    func.max(number).label(f"max{i}"),
                    func.percentile_cont(literal(list(QUANTILES), ARRAY(Float)))
                    .within_group(number)
                    .label(f"q{i}"),
                ]
            elif f.type in DATES:
                kind, sa_type = (
                    ("date", Date) if f.type == "date" else ("timestamptz", DateTime(timezone=True))
                )
                raw = cell.op("#>>")(literal([], ARRAY(String)))
                value = case((func.pg_input_is_valid(raw, kind), cast(raw, sa_type)), else_=null())
                aggregates += [func.min(value).label(f"min{i}"), func.max(value).label(f"max{i}")]
        stats = (await conn.execute(select(*aggregates).select_from(answers))).one()
        instances = int(stats.n)
        for i, f in enumerate(fields):
            answered = int(getattr(stats, f"a{i}"))
            entry = question(f, instances, answered, language)
            if f.type in NUMERIC:
                entry["numeric"] = numeric(
                    int(getattr(stats, f"c{i}")),
                    getattr(stats, f"mean{i}"),
                    getattr(stats, f"sd{i}"),
                    getattr(stats, f"min{i}"),
                    getattr(stats, f"max{i}"),
                    getattr(stats, f"q{i}"),
                )
            elif f.type in DATES:
                low, high = getattr(stats, f"min{i}"), getattr(stats, f"max{i}")
                entry["range"] = {
                    "min": low.isoformat() if low is not None else None,
                    "max": high.isoformat() if high is not None else None,
                }
            out[f.path] = entry
        await self._grouped(conn, answers, fields, out, language)
        await self._multiple_choices(conn, source, [f for f in fields if f.select_multiple], out, language)

    async def _grouped(
        self,
        conn: Any,
        answers: Any,
        fields: Sequence[Field],
        out: dict[str, dict[str, Any]],
        language: str | None,
    ) -> None:
        """Single-choice counts and numeric histograms of every question of a table in one
        scan of its derived table (GROUPING SETS: one grouping per question)."""
        keys: list[tuple[int, Field, str, ColumnElement[Any]]] = []
        for i, f in enumerate(fields):
            cell = answers.c[f"c{i}"]
            if is_select_one(f) and not f.select_multiple:
                raw = cell.op("#>>")(literal([], ARRAY(String)))
                keys.append((i, f, "choice", raw.label(f"g{i}")))
            elif f.type in NUMERIC and out[f.path]["numeric"]["min"] is not None:
                low, high = out[f.path]["numeric"]["min"], out[f.path]["numeric"]["max"]
                top = high if high > low else low + 1.0
                # width_bucket puts the maximum in bin n+1: fold it into the last bin.
                bucket = func.least(
                    func.width_bucket(_number_of(cell), low, top, HISTOGRAM_BINS), HISTOGRAM_BINS
                )
                keys.append((i, f, "bin", bucket.label(f"g{i}")))
        if not keys:
            return
        inner = select(*(expr for *_, expr in keys)).select_from(answers).subquery("g")
        columns = [inner.c[f"g{i}"] for i, *_ in keys]
        stmt = select(
            *columns,
            *(func.grouping(c).label(f"x{i}") for (i, *_), c in zip(keys, columns, strict=True)),
            func.count().label("n"),
        ).group_by(func.grouping_sets(*(tuple_(c) for c in columns)))
        found: dict[int, dict[Any, int]] = {i: {} for i, *_ in keys}
        for row in (await conn.execute(stmt)).mappings():
            for i, *_ in keys:
                if row[f"x{i}"] == 0:
                    value = row[f"g{i}"]
                    if value is not None:
                        found[i][value] = int(row["n"])
        for i, f, kind, _ in keys:
            entry = out[f.path]
            if kind == "choice":
                choice_counts(entry, f, {str(k): v for k, v in found[i].items()}, language)
                continue
            summary = entry["numeric"]
            summary["histogram"] = histogram(summary["min"], summary["max"], found[i])

    async def _multiple_choices(
        self,
        conn: Any,
        source: _Source,
        fields: Sequence[Field],
        out: dict[str, dict[str, Any]],
        language: str | None,
    ) -> None:
        """Counts of each ticked value of every multiple-choice question in one grouped scan."""
        if not fields:
            return
        paths = [f.path for f in fields]
        entry = func.jsonb_each_text(source.data).table_valued("key", "value").render_derived("entry")
        chosen = (
            func.regexp_split_to_table(func.btrim(entry.c.value), r"\s+")
            .table_valued("choice")
            .render_derived("chosen")
        )
        stmt = (
            select(entry.c.key, chosen.c.choice.label("value"), func.count().label("n"))
            .select_from(source.from_)
            .join(entry, literal(True))
            .join(chosen, literal(True))
            .where(*source.conditions, entry.c.key.in_(paths), chosen.c.choice != "")
            .group_by(entry.c.key, chosen.c.choice)
        )
        counts: dict[str, dict[str, int]] = {p: {} for p in paths}
        for row in (await conn.execute(stmt)).all():
            counts[row.key][row.value] = int(row.n)
        for f in fields:
            choice_counts(out[f.path], f, counts[f.path], language)


def _number_of(cell: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON value as a float when it is a number, else NULL."""
    return case((func.jsonb_typeof(cell) == "number", cast(cell, Float)), else_=null())
