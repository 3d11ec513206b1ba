"""Entity versions: differences between consecutive versions and offline-update conflicts.

An update made offline names the version it started from (`baseVersion`). When other
versions were written since, the update still applies (the newest write wins property by
property), and the entity is marked in conflict: `hard` when the update touches a property
(or the label) that one of those versions also changed, `soft` otherwise. Versions written
since by the same offline branch (one device's chain of updates) are not a conflict.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PastVersion:
    version: int
    changed: frozenset[str]  # property names (and "label") this version set
    branch_id: str | None


@dataclass(frozen=True)
class Conflict:
    kind: str | None  # None, "soft" or "hard"
    properties: tuple[str, ...]


def diffs(states: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """For each version after the first, what changed from the one before it."""
    result = []
    for previous, current in itertools.pairwise(states):
        result.append(
            [
                {"old": previous.get(key), "new": value, "propertyName": key}
                for key, value in current.items()
                if previous.get(key) != value
            ]
        )
    return result


def conflict_of(
    base_version: int,
    current_version: int,
    since: Iterable[PastVersion],
    incoming: frozenset[str],
    branch_id: str | None,
) -> Conflict:
    """The conflict an update based on `base_version` makes with the versions written since."""
    if base_version >= current_version:
        return Conflict(None, ())
    others = [
        v for v in since if v.version > base_version and (branch_id is None or v.branch_id != branch_id)
    ]
    if not others:
        return Conflict(None, ())
    touched = frozenset().union(*(v.changed for v in others))
    clashing = tuple(sorted(incoming & touched))
    return Conflict("hard" if clashing else "soft", clashing)


def worse(a: str | None, b: str | None) -> str | None:
    """The stronger of two conflict marks (hard > soft > none)."""
    order = {None: 0, "soft": 1, "hard": 2}
    return a if order[a] >= order[b] else b
