"""ODK Central's OData naming: identifiers, table names and the join ids of repeat rows.

Central sanitises every XML name into an OData identifier (a leading character that cannot
start one gets an `_` before it, runs of other characters become `_`), names repeat tables
`Submissions.<path segments joined by dots>`, and gives repeat rows opaque ids: the SHA-1 of
`Submissions#<instanceID>%%<name>#<0-based iteration>…` over the row's position (groups as
`<name>#`). Clients join tables on them, so they are kept byte-for-byte.
"""

from __future__ import annotations

import hashlib
import re

_LEADING = re.compile(r"^([^a-z_])", re.IGNORECASE)
_INVALID = re.compile(r"[^a-z0-9_]+", re.IGNORECASE)
_SEGMENT = re.compile(r"^(.*)\[(\d+)\]$")


def identifier(name: str) -> str:
    return _INVALID.sub("_", _LEADING.sub(r"_\1", name))


def path_parts(path: str) -> list[str]:
    """`/household/member` → `["household", "member"]` (sanitised)."""
    return [identifier(p) for p in path.strip("/").split("/") if p]


def table_name(repeat_path: str | None) -> str:
    """`None` → `Submissions`; `/household/member` → `Submissions.household.member`."""
    if not repeat_path:
        return "Submissions"
    return ".".join(["Submissions", *path_parts(repeat_path)])


def parent_id_property(enclosing_repeat: str | None) -> str:
    """The parent-join property of a repeat table: `__Submissions-id` for a top-level repeat,
    `__Submissions-household-id` for one nested in the repeat `/household`."""
    parts = ["Submissions", *(path_parts(enclosing_repeat) if enclosing_repeat else [])]
    return f"__{'-'.join(parts)}-id"


def row_id(key: str, instance_id: str) -> str:
    """The OData `__id` of the row with a CSV KEY: the instanceID for the root, else Central's
    SHA-1 join id computed from the key's segments."""
    if key == instance_id:
        return instance_id
    parts = [f"Submissions#{instance_id}"]
    for segment in key[len(instance_id) :].split("/")[1:]:
        match = _SEGMENT.match(segment)
        if match:
            parts.append(f"{match.group(1)}#{int(match.group(2)) - 1}")
        else:
            parts.append(f"{segment}#")
    return hashlib.sha1("%%".join(parts).encode()).hexdigest()  # noqa: S324 - an id, as Central's
