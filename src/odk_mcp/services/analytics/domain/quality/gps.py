"""GPS checks: points outside the project's area, far from the enumerator's usual place,
or repeated exactly (a real GPS fix almost never repeats to the last decimal; typed-in or
copied coordinates do).

"Usual place" is the enumerator's median centre (median latitude, median longitude); a point
is far when its great-circle distance exceeds both `gps_far_km` and `gps_far_factor` times
the enumerator's median distance from that centre.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from odk_mcp.services.analytics.domain.fields import SUBMISSION_ID, SUBMITTER, FieldIndex, Kind
from odk_mcp.services.analytics.domain.quality.findings import Area, Finding, QualityConfig, Severity

EARTH_KM = 6371.0088
MIN_POINTS_FOR_CENTRE = 5


def points(frame: pl.DataFrame, path: str) -> pl.DataFrame:
    """submission id, enumerator, lat, lon of the answered points of a geopoint field."""
    parts = pl.col(path).cast(pl.String).str.strip_chars().str.split(" ")
    return frame.select(
        pl.col(SUBMISSION_ID),
        pl.col(SUBMITTER).cast(pl.String).alias("enumerator")
        if SUBMITTER in frame.columns
        else pl.lit(None, pl.String).alias("enumerator"),
        parts.list.get(0, null_on_oob=True).cast(pl.Float64, strict=False).alias("lat"),
        parts.list.get(1, null_on_oob=True).cast(pl.Float64, strict=False).alias("lon"),
    ).drop_nulls(["lat", "lon"])


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))  # type: ignore[no-any-return]


def inside(area: Area, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Whether each point is in the area (even-odd ray casting for a polygon, vectorised over
    points)."""
    if area.box is not None:
        min_lon, min_lat, max_lon, max_lat = area.box
        return (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)
    assert area.polygon is not None
    vertices = np.asarray(area.polygon, dtype=float)
    result = np.zeros(len(lat), dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        crosses = (y1 > lat) != (y2 > lat)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
        result ^= crosses & (lon < x_at)
    return result


def gps_findings(frame: pl.DataFrame, fields: FieldIndex, config: QualityConfig) -> list[Finding]:
    findings: list[Finding] = []
    for field in fields.of_kind(Kind.GEOPOINT):
        if field.path not in frame.columns:
            continue
        pts = points(frame, field.path)
        if pts.height == 0:
            continue
        findings += (
            _area(pts, field.path, config)
            + _far(pts, field.path, config)
            + _repeated(pts, field.path, config)
        )
    return findings


def _area(pts: pl.DataFrame, path: str, config: QualityConfig) -> list[Finding]:
    if config.area is None or not config.enabled("gps_outside_area"):
        return []
    lat, lon = pts["lat"].to_numpy(), pts["lon"].to_numpy()
    outside = ~inside(config.area, lat, lon)
    return [
        Finding(
            "gps_outside_area",
            Severity.HIGH,
            f"Location {la:.5f}, {lo:.5f} is outside the project's area.",
            {"lat": la, "lon": lo},
            submission_id=sid,
            field=path,
            enumerator=who,
        )
        for sid, who, la, lo in pts.filter(pl.Series(outside)).iter_rows()
    ]


def _far(pts: pl.DataFrame, path: str, config: QualityConfig) -> list[Finding]:
    if not config.enabled("gps_far_from_cluster"):
        return []
    centred = pts.with_columns(
        pl.col("lat").median().over("enumerator").alias("c_lat"),
        pl.col("lon").median().over("enumerator").alias("c_lon"),
        pl.len().over("enumerator").alias("count"),
    ).filter(pl.col("count") >= MIN_POINTS_FOR_CENTRE)
    if centred.height == 0:
        return []
    distance = haversine_km(
        centred["lat"].to_numpy(),
        centred["lon"].to_numpy(),
        centred["c_lat"].to_numpy(),
        centred["c_lon"].to_numpy(),
    )
    centred = centred.with_columns(pl.Series("km", distance)).with_columns(
        pl.col("km").median().over("enumerator").alias("typical")
    )
    limit = pl.max_horizontal(pl.lit(config.gps_far_km), config.gps_far_factor * pl.col("typical"))
    far = centred.filter(pl.col("km") > limit)
    return [
        Finding(
            "gps_far_from_cluster",
            Severity.MEDIUM,
            f"Location is {row['km']:.1f} km from where this enumerator usually works "
            f"(typically {row['typical']:.1f} km).",
            {
                "lat": row["lat"],
                "lon": row["lon"],
                "distance_km": row["km"],
                "typical_km": row["typical"],
                "centre": [row["c_lat"], row["c_lon"]],
            },
            submission_id=row[SUBMISSION_ID],
            field=path,
            enumerator=row["enumerator"],
        )
        for row in far.iter_rows(named=True)
    ]


def _repeated(pts: pl.DataFrame, path: str, config: QualityConfig) -> list[Finding]:
    if not config.enabled("gps_repeated"):
        return []
    counted = pts.with_columns(pl.len().over("lat", "lon").alias("times")).filter(
        pl.col("times") >= config.gps_repeat_min
    )
    return [
        Finding(
            "gps_repeated",
            Severity.MEDIUM,
            f"The exact location {la}, {lo} appears in {times} submissions.",
            {"lat": la, "lon": lo, "times": times},
            submission_id=sid,
            field=path,
            enumerator=who,
        )
        for sid, who, la, lo, times in counted.iter_rows()
    ]
