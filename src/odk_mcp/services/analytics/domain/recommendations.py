"""Plain-language recommendations for the insight report, each derived from a stated rule.

Nothing here is generated text: every recommendation fires from a threshold on the quality
scan or the data, and its `because` says which numbers made it fire, so a reader can check it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from odk_mcp.services.analytics.domain.fields import CREATED_AT, FieldIndex, Kind
from odk_mcp.services.analytics.domain.quality.answers import is_metadata
from odk_mcp.services.analytics.domain.quality.scan import QualityScan

SHARE_THRESHOLDS = {"speeding": 0.05, "straightlining": 0.02, "outlier": 0.01}
MISSING_THRESHOLD = 0.2
DROP_THRESHOLD = 0.5


@dataclass(frozen=True)
class Recommendation:
    title: str
    because: str
    action: str
    rule: str


def recommend(frame: pl.DataFrame, fields: FieldIndex, quality: QualityScan) -> list[Recommendation]:
    n = max(quality.submissions, 1)
    counts = Counter(f.rule for f in quality.findings)
    out: list[Recommendation] = []
    for rule, threshold in SHARE_THRESHOLDS.items():
        share = counts.get(rule, 0) / n
        if share > threshold:
            out.append(_share_advice(rule, share, threshold, counts[rule]))
    if counts.get("duplicate", 0) or counts.get("near_duplicate", 0):
        out.append(
            Recommendation(
                "Resolve duplicate submissions",
                f"{counts.get('duplicate', 0)} submissions repeat an earlier one exactly and "
                f"{counts.get('near_duplicate', 0)} nearly (rules duplicate, near_duplicate).",
                "Check whether they were sent twice or copied; delete true duplicates before analysis.",
                "duplicate",
            )
        )
    if counts.get("gps_outside_area", 0):
        out.append(
            Recommendation(
                "Check locations outside the project's area",
                f"{counts['gps_outside_area']} interviews were recorded outside the configured area "
                "(rule gps_outside_area).",
                "Ask the enumerators concerned where these interviews took place; back-check them.",
                "gps_outside_area",
            )
        )
    for finding in quality.findings:
        if finding.rule.startswith("enumerator_"):
            out.append(
                Recommendation(
                    f"Back-check enumerator {finding.enumerator}",
                    finding.message + f" (rule {finding.rule}).",
                    "Re-interview a random sample of this enumerator's respondents "
                    "and review their work with them.",
                    finding.rule,
                )
            )
    out += _missingness(frame, fields)
    out += _pace(frame)
    return out


def _share_advice(rule: str, share: float, threshold: float, count: int) -> Recommendation:
    texts = {
        "speeding": (
            "Review very short interviews",
            "Re-brief enumerators on reading every question; back-check the fastest interviews.",
        ),
        "straightlining": (
            "Review identical answers across question batteries",
            "Check these interviews; consider varying question order or wording.",
        ),
        "outlier": (
            "Verify extreme values",
            "Confirm the flagged values with the enumerators; "
            "add constraints to the form to catch typing slips.",
        ),
    }
    title, action = texts[rule]
    return Recommendation(
        title,
        f"{count} interviews ({share:.1%}) are flagged by rule {rule}, "
        f"above the {threshold:.0%} a team usually tolerates.",
        action,
        rule,
    )


def _missingness(frame: pl.DataFrame, fields: FieldIndex) -> list[Recommendation]:
    out: list[Recommendation] = []
    if frame.height < 20:
        return out
    for field in fields.of_kind(Kind.NUMERIC, Kind.CATEGORICAL, Kind.MULTIPLE, Kind.TEXT):
        if field.path not in frame.columns or field.relevant or is_metadata(field) or field.calculate:
            continue
        column = frame[field.path].cast(pl.String)
        missing = float((column.is_null() | (column.str.strip_chars() == "")).sum()) / frame.height
        if missing > MISSING_THRESHOLD and field.required in (None, "false()"):
            out.append(
                Recommendation(
                    f"Question {field.name} is often unanswered",
                    f"{missing:.0%} of submissions leave {field.path} empty, "
                    "though it has no relevance condition.",
                    "Check whether respondents refuse it or enumerators skip it; "
                    "consider making it required or adding a 'don't know' choice.",
                    "missing_answers",
                )
            )
    return out


def _pace(frame: pl.DataFrame) -> list[Recommendation]:
    if frame.height == 0 or CREATED_AT not in frame.columns:
        return []
    last: datetime = frame[CREATED_AT].max()  # type: ignore[assignment]
    recent = frame.filter(pl.col(CREATED_AT) > last - timedelta(days=7)).height
    before = frame.filter(
        (pl.col(CREATED_AT) <= last - timedelta(days=7)) & (pl.col(CREATED_AT) > last - timedelta(days=14))
    ).height
    if before >= 20 and recent < (1 - DROP_THRESHOLD) * before:
        return [
            Recommendation(
                "Fieldwork has slowed down",
                f"{recent} submissions in the last 7 days against {before} in the 7 days before.",
                "Check with the field teams whether something blocks them (devices, access, connectivity).",
                "submission_pace",
            )
        ]
    return []
