"""Per-question summaries of a form's data, computed in SQL over the read model.

For the root table and each repeat table, a handful of scans answer every question at once:
one aggregate row (answered counts, numeric mean/sd/min/max/quantiles, date ranges, distinct
text values), one grouped unpivot for single-choice counts, one for multiple-choice counts,
one for numeric histograms, plus submissions per day. Nothing is summarised row by row in
Python. The same `$filter` as OData and exports selects the submissions (a repeat question is
summarised over the repeat instances of the selected submissions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, and_, cast, column, func, literal, select, values
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from odk_mcp.kernel.actor import Actor
from odk_mcp.services.aggregation.adapters.tables import repeat_rows, rows
from odk_mcp.services.aggregation.odata.filters import FieldRef, field_value
from odk_mcp.services.aggregation.reader import FormData, ReadModel
from odk_mcp.services.forms import Field

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 10
NUMERIC = frozenset({"int", "decimal"})
DATES = frozenset({"date", "dateTime"})
UNSUMMARISED = frozenset({"structure", "repeat", "binary"})


def _is_select_one(f: Field) -> bool:
    return (bool(f.choices) and not f.select_multiple) or f.type == "select1"


def _label(labels: dict[str, str], language: str | None) -> str | None:
    if not labels:
        return None
    if language and language in labels:
        return labels[language]
    return labels.get("default") or next(iter(labels.values()))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float, Decimal)) else None


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


@dataclass(frozen=True)
class _Source:
    """Where one table's values come from: its data column, and the rows to read."""

    data: ColumnElement[Any]
    from_: Any
    conditions: list[ColumnElement[bool]]


class Summaries:
    def __init__(self, read_model: ReadModel) -> None:
        self._read_model = read_model

    async def summarize(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        draft: bool = False,
        odata_filter: str | None = None,
        language: str | None = None,
    ) -> dict[str, Any]:
        """The summary of a form's (filtered) submissions; `submission.list` is checked."""
        form = await self._read_model.form(actor, project_id, xml_form_id, draft)
        conditions = self._read_model.submission_conditions(form, odata_filter)
        questions: dict[str, dict[str, Any]] = {}
        fields = [f for f in form.fields if f.type not in UNSUMMARISED]
        async with self._read_model.db.read() as conn:
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
            "xmlFormId": xml_form_id,
            "draft": draft,
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
        aggregates: list[ColumnElement[Any]] = [func.count().label("n")]
        for i, f in enumerate(fields):
            element = source.data[f.path]
            aggregates.append(
                func.count()
                .filter(element.isnot(None) & (func.jsonb_typeof(element) != "null"))
                .label(f"a{i}")
            )
            if f.type in NUMERIC:
                number = cast(field_value(source.data, FieldRef(f.path, f.type)).sql, Float)
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
                value = field_value(source.data, FieldRef(f.path, f.type)).sql  # a guarded date cast
                aggregates += [func.min(value).label(f"min{i}"), func.max(value).label(f"max{i}")]
            elif not _is_select_one(f) and not f.select_multiple:
                aggregates.append(func.count(source.data[f.path].astext.distinct()).label(f"d{i}"))
        stats = (
            await conn.execute(select(*aggregates).select_from(source.from_).where(*source.conditions))
        ).one()
        instances = int(stats.n)
        for i, f in enumerate(fields):
            answered = int(getattr(stats, f"a{i}"))
            question: dict[str, Any] = {
                "path": f.path,
                "name": f.name,
                "type": "select_multiple" if f.select_multiple else f.type,
                "label": _label(f.labels, language),
                "repeat": f.repeat,
                "total": instances,
                "answered": answered,
                "missing": instances - answered,
                "missingPercent": _percent(instances - answered, instances),
            }
            if f.type in NUMERIC:
                quantiles = getattr(stats, f"q{i}") or []
                question["numeric"] = {
                    "count": int(getattr(stats, f"c{i}")),
                    "mean": _number(getattr(stats, f"mean{i}")),
                    "median": _number(quantiles[2]) if quantiles else None,
                    "sd": _number(getattr(stats, f"sd{i}")),
                    "min": _number(getattr(stats, f"min{i}")),
                    "max": _number(getattr(stats, f"max{i}")),
                    "quantiles": {
                        f"p{round(q * 100)}": _number(v) for q, v in zip(QUANTILES, quantiles, strict=False)
                    },
                    "histogram": [],
                }
            elif f.type in DATES:
                low, high = getattr(stats, f"min{i}"), getattr(stats, f"max{i}")
                question["range"] = {
                    "min": low.isoformat() if low is not None else None,
                    "max": high.isoformat() if high is not None else None,
                }
            elif not _is_select_one(f) and not f.select_multiple:
                question["distinct"] = int(getattr(stats, f"d{i}"))
            out[f.path] = question
        await self._choices(
            conn,
            source,
            [f for f in fields if _is_select_one(f) and not f.select_multiple],
            out,
            language,
            multiple=False,
        )
        await self._choices(
            conn, source, [f for f in fields if f.select_multiple], out, language, multiple=True
        )
        await self._histograms(conn, source, [f for f in fields if f.type in NUMERIC], out)

    async def _choices(
        self,
        conn: Any,
        source: _Source,
        fields: Sequence[Field],
        out: dict[str, dict[str, Any]],
        language: str | None,
        *,
        multiple: bool,
    ) -> None:
        """Counts of each chosen value, all questions of the table in one grouped scan."""
        if not fields:
            return
        paths = [f.path for f in fields]
        entry = func.jsonb_each_text(source.data).table_valued("key", "value").render_derived("entry")
        value: Any = entry.c.value
        if multiple:
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
        else:
            stmt = (
                select(entry.c.key, value.label("value"), func.count().label("n"))
                .select_from(source.from_)
                .join(entry, literal(True))
                .where(*source.conditions, entry.c.key.in_(paths), value.isnot(None))
                .group_by(entry.c.key, value)
            )
        counts: dict[str, dict[str, int]] = {p: {} for p in paths}
        for row in (await conn.execute(stmt)).all():
            counts[row.key][row.value] = int(row.n)
        for f in fields:
            question = out[f.path]
            found = counts[f.path]
            answered = question["answered"]
            known = {c.value for c in f.choices}
            question["choices"] = [
                {
                    "value": c.value,
                    "label": _label(c.labels, language),
                    "count": found.get(c.value, 0),
                    "percent": _percent(found.get(c.value, 0), answered),
                }
                for c in f.choices
            ]
            question["otherValues"] = [
                {"value": v, "count": n, "percent": _percent(n, answered)}
                for v, n in sorted(found.items(), key=lambda item: (-item[1], item[0]))
                if v not in known
            ]

    async def _histograms(
        self, conn: Any, source: _Source, fields: Sequence[Field], out: dict[str, dict[str, Any]]
    ) -> None:
        """Equal-width bins between each question's min and max, every question in one scan."""
        bounds = [
            (f.path, out[f.path]["numeric"]["min"], out[f.path]["numeric"]["max"])
            for f in fields
            if out[f.path]["numeric"]["min"] is not None
        ]
        if not bounds:
            return
        limits = values(column("key"), column("lo", Float), column("hi", Float), name="limits").data(bounds)
        entry = func.jsonb_each(source.data).table_valued("key", "value").render_derived("entry")
        number = cast(entry.c.value, Float)
        # width_bucket puts the maximum in bin n+1: fold it into the last bin.
        bucket = func.least(
            func.width_bucket(
                number, limits.c.lo, func.greatest(limits.c.hi, limits.c.lo + 1e-9), HISTOGRAM_BINS
            ),
            HISTOGRAM_BINS,
        )
        stmt = (
            select(entry.c.key, bucket.label("bin"), func.count().label("n"))
            .select_from(source.from_)
            .join(entry, literal(True))
            .join(limits, and_(limits.c.key == entry.c.key))
            .where(*source.conditions, func.jsonb_typeof(entry.c.value) == "number")
            .group_by(entry.c.key, bucket)
        )
        found: dict[str, dict[int, int]] = {path: {} for path, _, _ in bounds}
        for row in (await conn.execute(stmt)).all():
            found[row.key][int(row.bin)] = int(row.n)
        for path, low, high in bounds:
            width = (high - low) / HISTOGRAM_BINS if high > low else 0.0
            bins = HISTOGRAM_BINS if width else 1
            out[path]["numeric"]["histogram"] = [
                {
                    "from": low + width * b,
                    "to": low + width * (b + 1) if width else high,
                    "count": found[path].get(b + 1, 0) if width else sum(found[path].values()),
                }
                for b in range(bins)
            ]
