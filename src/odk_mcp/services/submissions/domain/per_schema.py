"""What reading a submission derives from its form's schema, derived once per schema object.

The form a submission targets comes through a cache (`FormLookup`), so the same schema object
serves many submissions in a row; the field map, choice sets and rule plan are built on its
first use and kept with the schema itself (so a reused id is never mistaken for another schema).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from odk_mcp.services.forms import FormSchema

T = TypeVar("T")

_MAX_ENTRIES = 128
_derived: dict[tuple[int, str], tuple[FormSchema, object]] = {}


def derived(schema: FormSchema, kind: str, build: Callable[[FormSchema], T]) -> T:
    """`build(schema)`, computed once per schema object and kind."""
    key = (id(schema), kind)
    cached = _derived.get(key)
    if cached is not None and cached[0] is schema:
        return cached[1]  # type: ignore[return-value]
    value = build(schema)
    if len(_derived) >= _MAX_ENTRIES:
        _derived.pop(next(iter(_derived)))
    _derived[key] = (schema, value)
    return value
