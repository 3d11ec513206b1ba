"""Entity list and property names, with ODK Central's rules.

A list name is an XML name without '.', not starting with '__'; a property name is an XML
name without ':', not starting with '__', and not `name` or `label` in any case (those are
the CSV's own columns). Letters are Unicode letters, digits ASCII digits, as in Central.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 255
_ODATA_START = re.compile(r"^([^A-Za-z_])")
_ODATA_INVALID = re.compile(r"[^A-Za-z0-9_]+")


def _valid(name: str, start_extra: str, rest_extra: str) -> bool:
    if not 0 < len(name) <= MAX_NAME_LENGTH or name.startswith("__"):
        return False
    first, rest = name[0], name[1:]
    if not (first.isalpha() or first in start_extra):
        return False
    return all(c.isalpha() or c in "0123456789" or c in rest_extra for c in rest)


def valid_dataset_name(name: str) -> bool:
    return _valid(name, ":_", ":_-")


def valid_property_name(name: str) -> bool:
    if name.lower() in ("name", "label"):
        return False
    return _valid(name, "_", "._-")


def odata_name(name: str) -> str:
    """The identifier a property has in OData (Central's sanitising: invalid runs become '_')."""
    return _ODATA_INVALID.sub("_", _ODATA_START.sub(r"_\1", name))
