"""Impossible dates: answers after the submission reached the server, and interview
timestamps (start/end/today) before the form existed."""

from __future__ import annotations

from datetime import UTC, timedelta

import polars as pl

from odk_mcp.services.analytics.domain.fields import CREATED_AT, SUBMISSION_ID, FieldIndex, Kind
from odk_mcp.services.analytics.domain.quality.findings import Finding, QualityConfig, Severity
from odk_mcp.services.analytics.domain.quality.timestamps import instant_in

INTERVIEW_TIMESTAMPS = frozenset({"start", "end", "today"})


def date_findings(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> list[Finding]:
    findings: list[Finding] = []
    tolerance = timedelta(hours=config.future_tolerance_hours)
    for field in fields.of_kind(Kind.DATE, Kind.DATETIME):
        if field.path not in frame.columns:
            continue
        interview = field.name in INTERVIEW_TIMESTAMPS
        values = frame.select(
            pl.col(SUBMISSION_ID), pl.col(CREATED_AT), instant_in(frame, field.path).alias("at")
        ).drop_nulls("at")
        if config.enabled("future_date"):
            future = values.filter(pl.col("at") > pl.col(CREATED_AT) + tolerance)
            for sid, received, at in future.iter_rows():
                findings.append(
                    Finding(
                        "future_date",
                        Severity.HIGH if interview else Severity.MEDIUM,
                        f"{field.name} is {at:%Y-%m-%d %H:%M}, "
                        f"after the submission was received ({received:%Y-%m-%d %H:%M}).",
                        {"value": at.isoformat(), "received_at": received.isoformat()},
                        submission_id=sid,
                        field=field.path,
                    )
                )
        if config.enabled("date_before_form") and interview and config.form_created_at is not None:
            created = config.form_created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            early = values.filter(pl.col("at") < pl.lit(created - tolerance))
            for sid, _, at in early.iter_rows():
                findings.append(
                    Finding(
                        "date_before_form",
                        Severity.HIGH,
                        f"{field.name} is {at:%Y-%m-%d %H:%M}, "
                        f"before the form was created ({created:%Y-%m-%d}).",
                        {"value": at.isoformat(), "form_created_at": created.isoformat()},
                        submission_id=sid,
                        field=field.path,
                    )
                )
    return findings
