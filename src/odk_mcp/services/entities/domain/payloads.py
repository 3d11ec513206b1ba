"""Entity request bodies (REST JSON) checked against a list's properties.

Every value is a string (entity data is text, as in Central), every key a known property;
anything else is refused with 400.28 naming the entity and the reason, before any write.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

MAX_LABEL_LENGTH = 10_000
MAX_VALUE_LENGTH = 100_000
_UUID = re.compile(r"^(?:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I)


@dataclass(frozen=True)
class NewEntity:
    uuid: str
    label: str
    data: dict[str, str]


@dataclass(frozen=True)
class EntityChange:
    """A PATCH: a new label and/or some property values (others stay as they are)."""

    label: str | None
    data: dict[str, str]


def invalid(reason: str, **details: Any) -> Problem:
    return Problem(problems.INVALID_ENTITY, f"The entity is invalid. {reason}", {"reason": reason, **details})


def parse_uuid(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("Value for [uuid] is not a string.")
    match = _UUID.match(value.strip())
    if match is None:
        raise invalid(f"ID [{value[:100]}] is not a valid UUID.")
    return match.group(1).lower()


def _label(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("Value for [label] is not a string.")
    if not value.strip():
        raise invalid("Label empty or missing.")
    if len(value) > MAX_LABEL_LENGTH or "\x00" in value:
        raise invalid("Label too long or holds NUL characters.")
    return value


def _data(value: Any, properties: Collection[str], allow_label: bool) -> tuple[dict[str, str], str | None]:
    if not isinstance(value, dict):
        raise invalid("No entity data provided.")
    data: dict[str, str] = {}
    label = None
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid(f"Property value for [{key}] is not a string.")
        if len(item) > MAX_VALUE_LENGTH or "\x00" in item:
            raise invalid(f"Property value for [{key}] is too long or holds NUL characters.")
        if allow_label and key == "label":
            label = _label(item)
        elif key in properties:
            data[key] = item
        else:
            raise invalid(f"You specified the dataset property [{key}] which does not exist.")
    return data, label


def new_entity(body: Any, properties: Collection[str]) -> NewEntity:
    """One entity to create: `{uuid?, label, data}`."""
    if not isinstance(body, dict):
        raise invalid("The entity must be a JSON object.")
    extra = sorted(set(body) - {"uuid", "label", "data"})
    if extra:
        raise invalid("Unrecognized fields included in request.", fields=extra)
    data, _ = _data(body.get("data"), properties, allow_label=False)
    uuid = parse_uuid(body["uuid"]) if body.get("uuid") is not None else str(uuid_module.uuid4())
    return NewEntity(uuid=uuid, label=_label(body.get("label")), data=data)


def entity_change(body: Any, properties: Collection[str]) -> EntityChange:
    """A PATCH body: `{label?, data?}` (a `label` key inside data also sets the label)."""
    if not isinstance(body, dict):
        raise invalid("The entity must be a JSON object.")
    extra = sorted(set(body) - {"label", "data"})
    if extra:
        raise invalid("Unrecognized fields included in request.", fields=extra)
    label = _label(body["label"]) if body.get("label") is not None else None
    data: dict[str, str] = {}
    if body.get("data") is not None:
        data, data_label = _data(body["data"], properties, allow_label=True)
        label = data_label if data_label is not None else label
    return EntityChange(label=label, data=data)


@dataclass(frozen=True)
class BulkSource:
    name: str
    size: float | None


def bulk(body: dict[str, Any], properties: Collection[str]) -> tuple[list[NewEntity], BulkSource]:
    """`{entities: [{uuid?, label, data}, …], source: {name, size?}}`: all valid, or none."""
    extra = sorted(set(body) - {"entities", "source"})
    if extra:
        raise invalid("Unrecognized fields included in request.", fields=extra)
    source = body.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("name"), str) or not source["name"].strip():
        raise invalid("A bulk request needs source.name (for example the file name).")
    size = source.get("size")
    if size is not None and not isinstance(size, (int, float, str)):
        raise invalid("source.size must be a number.")
    try:
        size_value = float(size) if size is not None else None
    except ValueError as exc:
        raise invalid("source.size must be a number.") from exc
    rows = body.get("entities")
    if not isinstance(rows, list) or not rows:
        raise invalid("A bulk request needs a non-empty entities array.")
    parsed: list[NewEntity] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        try:
            entity = new_entity(row, properties)
        except Problem as exc:
            raise invalid(
                f"(Entity {index + 1}) {exc.details.get('reason', exc.message)}", index=index
            ) from exc
        if entity.uuid in seen:
            raise invalid(f"(Entity {index + 1}) UUID {entity.uuid} appears twice.", index=index)
        seen.add(entity.uuid)
        parsed.append(entity)
    return parsed, BulkSource(name=source["name"][:1000], size=size_value)
