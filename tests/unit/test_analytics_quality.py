"""Data-quality rules: precision and recall on a synthetic survey with planted problems,
and each rule on small hand-made cases."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from odk_mcp.services.analytics.domain.fields import FieldIndex
from odk_mcp.services.analytics.domain.quality.anomaly import anomaly_findings
from odk_mcp.services.analytics.domain.quality.dates import date_findings
from odk_mcp.services.analytics.domain.quality.findings import Area, QualityConfig, Severity
from odk_mcp.services.analytics.domain.quality.gps import haversine_km, inside
from odk_mcp.services.analytics.domain.quality.outliers import outlier_findings
from odk_mcp.services.analytics.domain.quality.scan import scan
from odk_mcp.services.analytics.synthetic import AREA_BOX, survey, survey_fields
from odk_mcp.services.forms import Field

PLANTED_RULES = {
    "speeding": "speeding",
    "straightlining": "straightlining",
    "duplicate": "duplicate",
    "near_duplicate": "near_duplicate",
    "outlier": "outlier",
    "gps_outside_area": "gps_outside_area",
    "gps_far_from_cluster": "gps_outside_area",  # fabricated points are also far from home
}


@pytest.fixture(scope="module")
def planted():
    frame, truth = survey(6000, seed=3)
    result = scan(frame, FieldIndex.of(survey_fields()), QualityConfig(area=Area(box=AREA_BOX)))
    return frame, truth, result


@pytest.mark.parametrize("rule", sorted(PLANTED_RULES))
def test_each_rule_finds_its_planted_problems_with_precision_and_recall_of_at_least_0_9(planted, rule):
    _, truth, result = planted
    found = {f.submission_id for f in result.findings if f.rule == rule}
    expected = getattr(truth, PLANTED_RULES[rule])
    hits = len(found & expected)
    precision, recall = hits / max(len(found), 1), hits / len(expected)
    assert precision >= 0.9, (rule, precision, len(found))
    assert recall >= 0.9, (rule, recall, len(expected))


def test_the_fabricating_enumerator_is_the_one_flagged(planted):
    _, truth, result = planted
    flagged = {f.enumerator for f in result.findings if f.rule == "enumerator_answer_pattern"}
    assert flagged == {truth.fabricator}
    table = {row.enumerator: row for row in result.enumerators}
    assert table[truth.fabricator].answer_divergence > 2 * np.median(
        [r.answer_divergence for r in result.enumerators]
    )


def test_enumerator_table_counts_flags_per_100_and_median_duration(planted):
    frame, _, result = planted
    row = next(r for r in result.enumerators if r.enumerator == "1")
    mine = frame.filter(pl.col("submitter_id") == 1)
    assert row.interviews == mine.height
    ids = set(mine["submission_id"].to_list())
    flags = [f for f in result.findings if f.submission_id in ids]
    assert row.findings_per_100 == pytest.approx(100 * len(flags) / mine.height)
    assert row.flagged_interviews == len({f.submission_id for f in flags})
    start = mine["/start"].str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z")
    end = mine["/end"].str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z")
    assert row.median_duration_seconds == pytest.approx(
        ((end - start).dt.total_milliseconds() / 1000).median()
    )


def test_every_finding_names_rule_severity_evidence_and_submission(planted):
    _, _, result = planted
    for finding in result.findings:
        assert (
            finding.rule and isinstance(finding.severity, Severity) and finding.message and finding.evidence
        )
        assert (finding.submission_id is None) == finding.rule.startswith("enumerator_")


def test_anomaly_scores_are_repeatable_and_point_at_unusual_answers(planted):
    frame, truth, _ = planted
    fields = FieldIndex.of(survey_fields())
    first = anomaly_findings(frame, fields, QualityConfig())
    assert first == anomaly_findings(frame, fields, QualityConfig())
    assert len(first) <= 0.01 * frame.height + 1
    assert len({f.submission_id for f in first} & truth.outlier) >= len(first) // 5


def test_speeding_against_the_median_by_hand():
    fields = FieldIndex.of([dt("/start", "start"), dt("/end", "end")])
    minutes = [30, 32, 28, 31, 5, 29]
    frame = pl.DataFrame(
        {
            "submission_id": list(range(1, 7)),
            "created_at": [datetime(2026, 1, 1, 12, tzinfo=UTC)] * 6,
            "submitter_id": [1] * 6,
            "/start": ["2026-01-01T10:00:00.000+02:00"] * 6,
            "/end": [f"2026-01-01T10:{m:02d}:00.000+02:00" for m in minutes],
        }
    )
    result = scan(frame, fields)
    speeding = [f for f in result.findings if f.rule == "speeding"]
    assert [f.submission_id for f in speeding] == [5]  # 300 s < 0.33 x median 1770 s
    assert speeding[0].evidence["median_seconds"] == pytest.approx(1770.0)
    assert result.median_duration_seconds == pytest.approx(1770.0)


def test_dates_in_the_future_or_before_the_form_existed():
    fields = FieldIndex.of([dt("/start", "start"), Field("/dob", "dob", "date", None, False, False)])
    frame = pl.DataFrame(
        {
            "submission_id": [1, 2, 3],
            "created_at": [datetime(2026, 3, 1, tzinfo=UTC)] * 3,
            "/start": [
                "2026-02-28T09:00:00.000Z",
                "2025-06-01T09:00:00.000Z",
                "2026-02-28T09:00:00.000+01:00",
            ],
            "/dob": ["1990-01-01", "1990-01-01", "2027-01-01"],
        }
    )
    config = QualityConfig(form_created_at=datetime(2026, 2, 1, tzinfo=UTC))
    found = {(f.rule, f.submission_id, f.field) for f in date_findings(frame, fields, config)}
    assert found == {("date_before_form", 2, "/start"), ("future_date", 3, "/dob")}


def test_outliers_need_both_robust_z_and_far_out_fences():
    values = [float(v) for v in range(40, 60)] + [61.0, 500.0]
    frame = pl.DataFrame({"submission_id": list(range(1, 23)), "/age": values})
    fields = FieldIndex.of([Field("/age", "age", "int", None, False, False)])
    (finding,) = outlier_findings(frame, fields, QualityConfig())
    assert finding.submission_id == 22 and finding.evidence["value"] == 500.0
    assert finding.evidence["median"] == pytest.approx(50.5)


def test_point_in_polygon_and_box():
    triangle = Area(polygon=((0.0, 0.0), (10.0, 0.0), (0.0, 10.0)))
    lat = np.array([1.0, 6.0, -1.0, 5.1])
    lon = np.array([1.0, 6.0, 1.0, 5.0])
    assert inside(triangle, lat, lon).tolist() == [True, False, False, False]
    assert inside(Area(box=(0, 0, 10, 10)), lat, lon).tolist() == [True, True, False, True]


def test_haversine_distance_of_a_known_pair():
    # Nairobi → Kampala, about 503 km along the great circle.
    km = haversine_km(np.array([-1.2921]), np.array([36.8219]), np.array([0.3476]), np.array([32.5825]))
    assert km[0] == pytest.approx(503, abs=5)


def dt(path: str, name: str) -> Field:
    return Field(path=path, name=name, type="dateTime", repeat=None, binary=False, select_multiple=False)


def test_duplicates_compare_normalised_answers_and_name_the_earlier_submission():
    from odk_mcp.services.analytics.domain.quality.duplicates import duplicate_findings

    names = [f"q{i}" for i in range(10)]
    fields = FieldIndex.of([Field(f"/{n}", n, "string", None, False, False) for n in names])
    base = {f"/{n}": f"answer {i}" for i, n in enumerate(names)}
    rows = [
        base,
        {k: "  " + v.upper() + "\t" for k, v in base.items()},  # the same once trimmed and lower-cased
        {**base, "/q9": "something else"},  # 9 of 10 answers the same: a near duplicate
        {**base, "/q8": None, "/q9": None, "/q7": "x"},  # 7 of 10 the same: neither
        {f"/{n}": f"other {i}" for i, n in enumerate(names)},
    ]
    frame = pl.DataFrame([{"submission_id": 101 + i, **r} for i, r in enumerate(rows)])
    found = {(f.rule, f.submission_id): f for f in duplicate_findings(frame, fields, QualityConfig())}
    assert set(found) == {("duplicate", 102), ("near_duplicate", 103)}
    assert found["duplicate", 102].evidence == {"duplicate_of": 101, "group_size": 2}
    near = found["near_duplicate", 103].evidence
    assert (
        near["near_duplicate_of"] == 101 and near["similarity"] == 0.9 and near["differing_fields"] == ["/q9"]
    )


def test_a_scan_reports_each_rule_group_in_order():
    frame, _ = survey(300, seed=1)
    steps: list[tuple[str, int, int]] = []
    scan(frame, FieldIndex.of(survey_fields()), QualityConfig(), lambda *step: steps.append(step))
    assert [s[0] for s in steps][:3] == ["durations", "straightlining", "duplicates"]
    assert [s[1] for s in steps] == list(range(len(steps))) and {s[2] for s in steps} == {len(steps)}
