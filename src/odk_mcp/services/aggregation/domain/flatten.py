"""Flattening a submission's typed data into read-model rows.

Submissions store each version's data as nested JSON (groups as objects, repeats as arrays of
objects), read against the form version it was submitted to. Here it becomes one root row and
one row per repeat instance, each a flat mapping from the field's absolute path to its value,
guided by that same version's schema: a field added, dropped or retyped in another version
only ever appears under its own path, so versions coexist in one table.

Keys follow ODK Central's CSV KEY: `<instanceID>/group/repeat[n]/inner[m]` (1-based, group
names included), and a repeat row's parent key is the enclosing repeat row's key, or the
instanceID for top-level repeats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from odk_mcp.services.forms import Field, FormSchema


@dataclass(frozen=True)
class RepeatInstance:
    repeat_path: str
    key: str
    parent_key: str
    ordinal: int  # 1-based among its siblings in the same parent
    seq: int  # 1-based document order among the submission's rows of this repeat
    data: dict[str, Any]


@dataclass
class Flattened:
    root: dict[str, Any] = field(default_factory=dict)
    repeats: list[RepeatInstance] = field(default_factory=list)


def field_index(schema: FormSchema) -> dict[str, Field]:
    return {f.path: f for f in schema.fields}


def flatten(data: Mapping[str, Any], fields: Mapping[str, Field], instance_id: str) -> Flattened:
    """One submission version's data as a root row and repeat rows (elements the version's
    schema does not know are left out: they were flagged when the submission arrived)."""
    out = Flattened()
    seqs: dict[str, int] = {}

    def walk(node: Mapping[str, Any], prefix: str, key: str, target: dict[str, Any]) -> None:
        for name, value in node.items():
            path = f"{prefix}/{name}"
            spec = fields.get(path)
            if spec is None:
                continue
            if spec.type == "repeat":
                entries = value if isinstance(value, list) else [value]
                for ordinal, entry in enumerate(entries, start=1):
                    if not isinstance(entry, Mapping):
                        continue
                    seqs[path] = seqs.get(path, 0) + 1
                    own_key = f"{key}/{name}[{ordinal}]"
                    row: dict[str, Any] = {}
                    out.repeats.append(
                        RepeatInstance(
                            path, own_key, parent_key_of(key, instance_id), ordinal, seqs[path], row
                        )
                    )
                    walk(entry, path, own_key, row)
            elif spec.type == "structure":
                if isinstance(value, Mapping):
                    walk(value, path, f"{key}/{name}", target)
            elif not isinstance(value, (Mapping, list)):
                target[path] = value

    walk(data, "", instance_id, out.root)
    return out


def parent_key_of(context_key: str, instance_id: str) -> str:
    """The key of the repeat row a context key lies in: group segments after the last
    repeat segment are dropped (`uuid:1/a[2]/grp` → `uuid:1/a[2]`; `uuid:1/grp` → `uuid:1`)."""
    if context_key == instance_id:
        return instance_id
    rest = context_key[len(instance_id) :].split("/")[1:]
    while rest and not rest[-1].endswith("]"):
        rest.pop()
    return "/".join([instance_id, *rest])


def merged_fields(schemas: Iterable[FormSchema]) -> tuple[Field, ...]:
    """Every field of several versions of one form, in the newest version's order, with the
    fields only older versions had placed after their preceding sibling (ODK Central's
    merge for `deletedFields`); a path keeps its newest definition."""
    result: list[Field] = []
    for schema in reversed(list(schemas)):  # newest first
        if not result:
            result = list(schema.fields)
            continue
        known = {f.path for f in result}
        previous_path: str | None = None
        for f in schema.fields:
            if f.path in known:
                previous_path = f.path
                continue
            parent = f.path.rsplit("/", 1)[0]
            at = _insertion_point(result, previous_path, parent)
            result.insert(at, f)
            known.add(f.path)
            previous_path = f.path
    return tuple(result)


def _insertion_point(fields: list[Field], previous_path: str | None, parent: str) -> int:
    """After the previous sibling's whole subtree, or right after the parent (or at the end)."""
    paths = [f.path for f in fields]
    anchor = previous_path if previous_path is not None and previous_path in paths else None
    if anchor is None:
        if parent and parent in paths:
            return paths.index(parent) + 1
        return len(paths) if parent else 0
    at = paths.index(anchor) + 1
    while at < len(paths) and paths[at].startswith(anchor + "/"):
        at += 1
    return at
