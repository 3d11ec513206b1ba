"""What a webhook subscription may say: its events, form filter, field subset and secret.

Each check returns the normalised value or raises 400.8 (400.13 for lengths) naming the
field, so a bad request changes nothing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

MAX_FORMS = 100
MAX_FIELDS = 200
MAX_FIELD_PATH = 500
MAX_FORM_ID = 200
MIN_SECRET = 16
MAX_SECRET = 200
SECRET_BYTES = 32

# A field path as the submission data nests it: element names joined by "/" ("age",
# "household/member/name"); no leading slash, no empty step.
_FIELD_PATH = re.compile(r"^[A-Za-z_][\w.\-]*(?:/[A-Za-z_][\w.\-]*)*$")


def _unexpected(field: str, message: str, **details: object) -> Problem:
    return Problem(problems.UNEXPECTED_VALUE, message, {"field": field, **details})


def check_events(events: Iterable[str], known: frozenset[str]) -> list[str]:
    """The distinct event names, in the order given; unknown names are refused."""
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise _unexpected("events", "A webhook needs at least one event.", allowed=sorted(known))
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise _unexpected("events", "Unknown event names.", unknown=unknown, allowed=sorted(known))
    return chosen


def check_form_ids(form_ids: Iterable[str] | None) -> list[str] | None:
    """The forms a webhook is limited to (None: every form of the project)."""
    if form_ids is None:
        return None
    chosen = list(dict.fromkeys(form_ids))
    if not chosen:
        raise _unexpected("xmlFormIds", "Leave xmlFormIds out (or null) for every form, or name some forms.")
    if len(chosen) > MAX_FORMS:
        raise _unexpected("xmlFormIds", f"At most {MAX_FORMS} forms.")
    for form_id in chosen:
        if not form_id.strip() or len(form_id) > MAX_FORM_ID:
            raise _unexpected("xmlFormIds", "Each form id must be 1 to 200 characters.", value=form_id[:50])
    return chosen


def check_fields(fields: Iterable[str] | None) -> list[str] | None:
    """The data fields a webhook sends (None: all of them; empty: none, metadata only)."""
    if fields is None:
        return None
    chosen = list(dict.fromkeys(fields))
    if len(chosen) > MAX_FIELDS:
        raise _unexpected("fields", f"At most {MAX_FIELDS} fields.")
    for path in chosen:
        if len(path) > MAX_FIELD_PATH or not _FIELD_PATH.match(path):
            raise _unexpected(
                "fields",
                "Each field is a path of element names joined by '/', such as 'age' or 'household/name'.",
                value=path[:100],
            )
    return chosen


def check_secret(secret: str | None) -> str:
    """The given secret, or a new random one when none is given."""
    if secret is None:
        return secrets.token_urlsafe(SECRET_BYTES)
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or secret != secret.strip():
        raise _unexpected(
            "secret", f"A secret must be {MIN_SECRET} to {MAX_SECRET} characters, without surrounding spaces."
        )
    return secret
