"""GeoJSON (RFC 7946): a FeatureCollection streamed feature by feature, one feature per
submission, its geometry from one geo field (the first geopoint unless another is chosen),
its properties the root table's columns.

ODK writes positions as "lat lon alt acc" (points) joined by `;` (traces and shapes);
GeoJSON wants [lon, lat(, alt)]. A submission without a usable value has a null geometry,
which GeoJSON allows, so no submission is left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from odk_mcp.services.forms import Field

HEAD = b'{"type":"FeatureCollection","features":[\n'
TAIL = b"\n]}\n"


def _position(text: str) -> list[float] | None:
    parts = text.split()
    if len(parts) < 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
        alt = float(parts[2]) if len(parts) > 2 else None
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return [lon, lat] if alt is None or not math.isfinite(alt) else [lon, lat, alt]


def geometry(field: Field, value: Any) -> dict[str, Any] | None:
    """The GeoJSON geometry of an ODK geopoint/geotrace/geoshape value, or None."""
    if value is None:
        return None
    if field.type == "geopoint":
        point = _position(str(value))
        return {"type": "Point", "coordinates": point} if point else None
    positions = [_position(p) for p in str(value).split(";") if p.strip()]
    if not positions or any(p is None for p in positions):
        return None
    line = [p for p in positions if p is not None]
    if field.type == "geotrace":
        return {"type": "LineString", "coordinates": line} if len(line) >= 2 else None
    if line[0][:2] != line[-1][:2]:
        line.append(line[0])
    return {"type": "Polygon", "coordinates": [line]} if len(line) >= 4 else None


def _json_value(cell: Any) -> Any:
    if isinstance(cell, datetime):
        return cell.isoformat().replace("+00:00", "Z")
    return cell


class GeoJsonEncoder:
    """Features as UTF-8 bytes, batch by batch; HEAD before the first, TAIL after the last."""

    def __init__(self, headers: Sequence[str], geo: Field | None) -> None:
        self._headers = list(headers)
        self._geo = geo
        self._first = True

    def encode(self, features: Sequence[tuple[str, Any, Sequence[Any]]]) -> bytes:
        """`features`: (id, geo field value, cells) per submission."""
        parts = []
        for feature_id, geo_value, cells in features:
            feature = {
                "type": "Feature",
                "id": feature_id,
                "geometry": geometry(self._geo, geo_value) if self._geo is not None else None,
                "properties": {h: _json_value(c) for h, c in zip(self._headers, cells, strict=True)},
            }
            text = json.dumps(feature, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            parts.append(text if self._first else ",\n" + text)
            self._first = False
        return "".join(parts).encode("utf-8")
