"""Which fields of a form hold personal data: defaults guessed from names and types, and the
form's own setting on top.

Assistants (the MCP server) see sensitive fields redacted unless their token carries the `pii`
scope. The defaults err on the side of redacting: person names, phone numbers, email
addresses, identity numbers, and precise locations (every geopoint, geotrace and geoshape).
A form manager corrects them per field (`PATCH …/sensitivity`); a field set explicitly keeps
that setting whatever its name.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from odk_mcp.services.forms.domain.schema import Field, FormSchema

GEO_TYPES = frozenset({"geopoint", "geotrace", "geoshape"})
_PERSON_NAME = frozenset({"name", "names", "surname", "firstname", "lastname", "fullname", "forename"})
# Names of places and organisations are not personal data.
_NOT_A_PERSON = frozenset(
    {
        "village", "district", "region", "province", "county", "state", "country", "city", "town",
        "place", "location", "site", "school", "facility", "clinic", "hospital", "community",
        "street", "company", "organisation", "organization", "org", "business", "project", "form",
        "file", "team", "group", "crop", "species", "product", "brand", "item", "road", "camp",
    }
)  # fmt: skip
_PHONE = frozenset({"phone", "mobile", "tel", "telephone", "msisdn", "cell", "cellphone", "whatsapp"})
_EMAIL = frozenset({"email", "mail"})
_IDENTITY = frozenset({"nid", "passport", "ssn", "nin", "idcard"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _words(name: str) -> set[str]:
    """`respondentFirstName`, `first_name`, `phone-2` → lower-case words, plus joined pairs."""
    words = [w.lower() for w in _WORD.findall(name)]
    return set(words) | {a + b for a, b in itertools.pairwise(words)}


def default_reason(field: Field) -> str | None:
    """Why a field is sensitive by default (None when it is not)."""
    if field.type in GEO_TYPES:
        return "precise location"
    if field.type in ("structure", "repeat"):
        return None
    if field.binary:
        return "media (may show or record people)"
    words = _words(field.name)
    if words & _PERSON_NAME and not words & _NOT_A_PERSON:
        return "person name"
    if words & _PHONE:
        return "phone number"
    if words & _EMAIL:
        return "email address"
    if words & _IDENTITY or {"national", "id"} <= words:
        return "identity number"
    return None


@dataclass(frozen=True)
class FieldSensitivity:
    path: str
    sensitive: bool
    source: str  # "default" | "setting"
    reason: str | None


def effective(schema: FormSchema, settings: dict[str, bool]) -> list[FieldSensitivity]:
    """Every data field's sensitivity: the form's setting where there is one, else the default."""
    out = []
    for field in schema.fields:
        if field.type in ("structure", "repeat"):
            continue
        reason = default_reason(field)
        if field.path in settings:
            out.append(FieldSensitivity(field.path, settings[field.path], "setting", reason))
        else:
            out.append(FieldSensitivity(field.path, reason is not None, "default", reason))
    return out
