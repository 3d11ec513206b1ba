"""Data minimisation: answers flattened to field paths, sensitive ones withheld without `pii`,
only the selected fields kept, media reduced to file names (never content).

Pure functions over the stored answers (groups as objects, repeats as lists of objects).
"""

from __future__ import annotations

from typing import Any


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"hh": {"size": 4}, "member": [{"age": 3}]}` → `{"/hh/size": 4, "/member": [{"/member/age": 3}]}`."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path))
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            out[path] = [flatten(v, path) for v in value]
        else:
            out[path] = value
    return out


def minimise(
    values: dict[str, Any], sensitive: frozenset[str], may_see_pii: bool, selected: frozenset[str] | None
) -> tuple[dict[str, Any], list[str]]:
    """Keep the selected paths (all when None), withholding sensitive ones; returns the withheld paths."""
    redacted: list[str] = []

    def keep(path: str) -> bool:
        return selected is None or path in selected or any(s.startswith(path + "/") for s in selected)

    def walk(flat: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, value in flat.items():
            if not keep(path):
                continue
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                out[path] = [walk(v) for v in value]
            elif path in sensitive and not may_see_pii and value is not None:
                out[path] = None
                if path not in redacted:
                    redacted.append(path)
            else:
                out[path] = value
        return out

    return walk(values), redacted
