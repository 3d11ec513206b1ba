"""What an insight report says: key numbers, per-question summaries, notable associations,
quality flags and recommendations (computed once, rendered as HTML or PDF)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from odk_mcp.services.analytics.domain.fields import (
    CREATED_AT,
    SUBMITTER,
    FieldIndex,
    Kind,
    category_order,
    kind_of,
    label_of,
)
from odk_mcp.services.analytics.domain.notable import Screening, notable_crosstabs
from odk_mcp.services.analytics.domain.numeric import as_float
from odk_mcp.services.analytics.domain.quality.answers import is_metadata
from odk_mcp.services.analytics.domain.quality.scan import QualityScan
from odk_mcp.services.analytics.domain.recommendations import Recommendation, recommend
from odk_mcp.services.analytics.domain.timeseries import TimeSeries, timeseries

MAX_QUESTIONS = 40
MAX_BARS = 12


@dataclass(frozen=True)
class QuestionSummary:
    path: str
    label: str
    kind: str
    answered: int
    categories: list[tuple[str, int]]  # categorical: (value, count), most common first, capped
    values: list[float]  # numeric: the answers (for a histogram)
    mean: float | None
    median: float | None


@dataclass(frozen=True)
class ReportContent:
    title: str
    xml_form_id: str
    generated_at: datetime
    submissions: int
    enumerators: int
    first: datetime | None
    last: datetime | None
    median_duration_seconds: float | None
    flagged_submissions: int
    questions: list[QuestionSummary]
    daily: TimeSeries
    screening: Screening
    quality: QualityScan
    findings_by_rule: list[tuple[str, int]]
    recommendations: list[Recommendation]


def build(
    title: str, xml_form_id: str, frame: pl.DataFrame, fields: FieldIndex, quality: QualityScan, now: datetime
) -> ReportContent:
    flagged = len({f.submission_id for f in quality.findings if f.submission_id is not None})
    return ReportContent(
        title=title,
        xml_form_id=xml_form_id,
        generated_at=now,
        submissions=frame.height,
        enumerators=frame[SUBMITTER].n_unique() if frame.height else 0,
        first=frame[CREATED_AT].min() if frame.height else None,  # type: ignore[arg-type]
        last=frame[CREATED_AT].max() if frame.height else None,  # type: ignore[arg-type]
        median_duration_seconds=quality.median_duration_seconds,
        flagged_submissions=flagged,
        questions=summaries(frame, fields),
        daily=timeseries(frame, "day"),
        screening=notable_crosstabs(frame, fields),
        quality=quality,
        findings_by_rule=Counter(f.rule for f in quality.findings).most_common(),
        recommendations=recommend(frame, fields, quality),
    )


def summaries(frame: pl.DataFrame, fields: FieldIndex) -> list[QuestionSummary]:
    out = []
    for field in fields.of_kind(Kind.NUMERIC, Kind.CATEGORICAL, Kind.MULTIPLE)[:MAX_QUESTIONS]:
        if field.path not in frame.columns or is_metadata(field):
            continue
        kind = kind_of(field)
        if kind is Kind.NUMERIC:
            values = frame.select(as_float(field.path).fill_nan(None)).to_series().drop_nulls()
            out.append(
                QuestionSummary(
                    field.path,
                    label_of(field),
                    kind.value,
                    values.len(),
                    [],
                    values.to_list(),
                    float(values.mean()) if values.len() else None,  # type: ignore[arg-type]
                    float(values.median()) if values.len() else None,  # type: ignore[arg-type]
                )
            )
            continue
        column = frame[field.path].cast(pl.String).str.strip_chars()
        answered = column.filter(column.is_not_null() & (column != ""))
        values_s = answered.str.split(" ").explode() if kind is Kind.MULTIPLE else answered
        counts = dict(values_s.value_counts().iter_rows())
        order = category_order(field, list(counts))
        labelled = [(v, int(counts[v])) for v in order][:MAX_BARS]
        out.append(
            QuestionSummary(field.path, label_of(field), kind.value, answered.len(), labelled, [], None, None)
        )
    return out
