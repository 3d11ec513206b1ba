"""Read-model rows as ODK Central's OData JSON entities.

Values come out as Central writes them: numbers for int/decimal (a value stored as text
because it did not fit is `null`), geometry as GeoJSON (or WKT with `$wkt=true`, coordinates
lon/lat/alt), dateTime offsets `+07` completed to `+07:00`, everything else as text; every
question of the table is present (`null` when unanswered) and groups are nested objects.
Repeats appear as `<name>@odata.navigationLink` where the row has instances of them, and with
`$expand=*` also inline as arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from odk_mcp.kernel.clock import iso
from odk_mcp.services.aggregation.domain.naming import identifier, path_parts, row_id
from odk_mcp.services.aggregation.odata.model import Node
from odk_mcp.services.aggregation.odata.shaping import Shaper, compile_shaper

_SHORT_OFFSET = re.compile(r"[+-]\d\d$")


def _floats(text: str) -> list[float]:
    out = []
    for part in text.split():
        try:
            value = float(part)
        except ValueError:
            return []
        if not math.isfinite(value):
            return []
        out.append(value)
    return out


def _coordinates(point: str) -> list[float] | None:
    numbers = _floats(point)
    if len(numbers) < 2:
        return None
    lat, lon = numbers[0], numbers[1]
    return [lon, lat, numbers[2]] if len(numbers) > 2 else [lon, lat]


def _geo(kind: str, text: str, wkt: bool) -> Any:
    if kind == "geopoint":
        coordinates = _coordinates(text)
        if coordinates is None:
            return None
        if wkt:
            return f"POINT ({' '.join(_number_text(c) for c in coordinates)})"
        point: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
        numbers = _floats(text)
        if len(numbers) > 3:
            point["properties"] = {"accuracy": numbers[3]}
        return point
    points = [c for c in (_coordinates(p) for p in text.split(";")) if c is not None]
    if not points:
        return None
    if wkt:
        joined = ",".join(" ".join(_number_text(c) for c in p) for p in points)
        return f"LINESTRING ({joined})" if kind == "geotrace" else f"POLYGON (({joined}))"
    if kind == "geotrace":
        return {"type": "LineString", "coordinates": points}
    return {"type": "Polygon", "coordinates": [points]}


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _integer(raw: Any) -> Any:
    return raw if type(raw) is int else None


def _decimal(raw: Any) -> Any:
    return raw if type(raw) in (int, float) else None


def _text(raw: Any) -> Any:
    return raw if raw is None or type(raw) is str else str(raw)


def _date_time(raw: Any) -> Any:
    if raw is None:
        return None
    trimmed = str(raw).strip()
    return f"{trimmed}:00" if _SHORT_OFFSET.search(trimmed) else trimmed


# Converters the compiled shapers inline (by identity; shaping._INLINE has their code).
_KINDS = {id(_integer): "int", id(_decimal): "decimal", id(_text): "text"}


def converter(kind: str, wkt: bool) -> Callable[[Any], Any]:
    """The function turning one stored value of a question type into its OData JSON value."""
    if kind == "int":
        return _integer
    if kind == "decimal":
        return _decimal
    if kind in ("geopoint", "geotrace", "geoshape"):
        return lambda raw: None if raw is None else _geo(kind, str(raw), wkt)
    if kind == "dateTime":
        return _date_time
    return _text


def value_of(node: Node, raw: Any, wkt: bool) -> Any:
    """One question's stored value as its OData JSON value."""
    return converter(node.type, wkt)(raw)


@dataclass
class Children:
    """The repeat rows under each row of a page, by parent key and repeat path."""

    rows: dict[tuple[str, str], list[Mapping[str, Any]]] = field(default_factory=dict)
    present: set[tuple[str, str]] = field(default_factory=set)

    def add(self, row: Mapping[str, Any]) -> None:
        self.rows.setdefault((row["parent_key"], row["repeat_path"]), []).append(row)
        self.present.add((row["parent_key"], row["repeat_path"]))


@dataclass(frozen=True)
class RenderContext:
    children: Children
    expand: bool
    wkt: bool
    tables: Mapping[str, Sequence[Node]]  # repeat path → that table's properties
    plans: Plans


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~:-]*")


def _quoted(instance_id: str) -> str:
    """`quote(instance_id, safe='')`, without its cost for the usual `uuid:…` ids."""
    if _UNRESERVED.fullmatch(instance_id):
        return instance_id.replace(":", "%3A")
    return quote(instance_id, safe="")


def _link(instance_id: str, key: str, repeat: Node) -> str:
    """`Submissions('uuid%3A…')/hh/member('<id>')/visit`: the table of `repeat` under `key`."""
    if key == instance_id:  # a top-level repeat under its submission: the common case
        return f"Submissions('{_quoted(instance_id)}')/" + "/".join(path_parts(repeat.path))
    parts = [f"Submissions('{_quoted(instance_id)}')"]
    segments = key[len(instance_id) :].split("/")[1:]
    consumed = ""
    for segment in segments:
        name, bracket, _ = segment.partition("[")
        consumed += "/" + segment
        if bracket:
            parts.append(f"{identifier(name)}('{row_id(instance_id + consumed, instance_id)}')")
        else:
            parts.append(identifier(name))
    relative = repeat.path
    enclosing = "/" + "/".join(s.partition("[")[0] for s in segments) if segments else ""
    tail = [identifier(p) for p in relative[len(enclosing) :].strip("/").split("/")]
    return "/".join(parts + tail)


# A compiled table layout: (name, path, convert) for a value, (name, steps) for a group,
# (name, repeat node) for a nested repeat. Built once per request, not per row.
Step = tuple[str, str, Any]


@dataclass
class Plans:
    """Compiled layouts of a request's tables, by the identity of their node lists."""

    wkt: bool
    selection: frozenset[str] | None
    _plans: dict[int, list[Step]] = field(default_factory=dict)
    _shapers: dict[int, Shaper] = field(default_factory=dict)

    def shaper(self, nodes: Sequence[Node]) -> Shaper:
        """The compiled function filling an entity with these nodes' properties (shaping.py)."""
        shaper = self._shapers.get(id(nodes))
        if shaper is None:
            shaper = compile_shaper(self.of(nodes), _KINDS, _link, expanded)
            self._shapers[id(nodes)] = shaper
        return shaper

    def of(self, nodes: Sequence[Node]) -> list[Step]:
        plan = self._plans.get(id(nodes))
        if plan is None:
            plan = self._compile(nodes)
            self._plans[id(nodes)] = plan
        return plan

    def _compile(self, nodes: Sequence[Node]) -> list[Step]:
        steps: list[Step] = []
        for node in nodes:
            if self.selection is not None and node.path not in self.selection:
                continue
            if node.is_group:
                steps.append(("group", node.name, self._compile(node.children)))
            elif node.is_repeat:
                steps.append(("repeat", node.name, node))
            else:
                steps.append((node.name, node.path, converter(node.type, self.wkt)))
        return steps


def fill(
    target: dict[str, Any],
    nodes: Sequence[Node],
    data: Mapping[str, Any],
    key: str,
    instance_id: str,
    context: RenderContext,
) -> None:
    """Write a row's properties (values, groups, repeat links and expansions) into `target`,
    in the layout's order: each value through its type's converter, each group as a nested
    object, each repeat as a navigation link where the row has instances of it (and inline
    with `$expand=*`)."""
    context.plans.shaper(nodes)(target, data, key, instance_id, context)


def expanded(row: Mapping[str, Any], instance_id: str, context: RenderContext) -> dict[str, Any]:
    """A repeat instance inline under its parent (`$expand=*`): no parent-join property."""
    out: dict[str, Any] = {"__id": row_id(row["key"], instance_id)}
    fill(out, context.tables[row["repeat_path"]], row["data"], row["key"], instance_id, context)
    return out


def system_of(row: Mapping[str, Any], names: Mapping[int, str]) -> dict[str, Any]:
    submitter = row["submitter_id"]
    return {
        "submissionDate": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "submitterId": str(submitter) if submitter is not None else None,
        "submitterName": names.get(submitter) if submitter is not None else None,
        "attachmentsPresent": row["attachments_present"],
        "attachmentsExpected": row["attachments_expected"],
        "status": row["status"],
        "reviewState": row["review_state"],
        "deviceId": row["device_id"],
        "edits": row["edits"],
        "formVersion": row["form_version"],
        "deletedAt": iso(row["deleted_at"]),
    }
