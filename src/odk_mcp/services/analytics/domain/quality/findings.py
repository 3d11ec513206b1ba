"""A data-quality finding, and the settings of the rules that produce them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one submission (or, for enumerator rules, one enumerator): what
    rule fired, why (evidence with the numbers and thresholds), and how much it matters."""

    rule: str
    severity: Severity
    message: str
    evidence: dict[str, Any]
    submission_id: int | None = None
    field: str | None = None
    enumerator: str | None = None


@dataclass(frozen=True)
class Area:
    """The project's fieldwork area: a box (min_lon, min_lat, max_lon, max_lat) or a polygon
    of (lon, lat) vertices (GeoJSON order)."""

    box: tuple[float, float, float, float] | None = None
    polygon: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class QualityConfig:
    start_field: str | None = None  # default: the dateTime field named `start`
    end_field: str | None = None  # default: the dateTime field named `end`
    speed_fraction: float = 0.33  # faster than a third of the median interview
    min_duration_seconds: float | None = None
    straightline_min_questions: int = 5
    near_duplicate_similarity: float = 0.9
    outlier_z: float = 3.5
    outlier_iqr_k: float = 3.0
    anomaly_threshold: float = 0.6
    anomaly_max_share: float = 0.01
    area: Area | None = None
    gps_far_km: float = 25.0
    gps_far_factor: float = 5.0
    gps_repeat_min: int = 3
    form_created_at: datetime | None = None
    future_tolerance_hours: float = 24.0
    enumerator_z: float = 3.5
    enumerator_min_submissions: int = 20
    random_state: int = 0
    rules: frozenset[str] | None = None  # None: every rule

    def enabled(self, rule: str) -> bool:
        return self.rules is None or rule in self.rules
