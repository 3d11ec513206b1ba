"""OData system query options of a feed request, checked once up front.

Every option this server implements is parsed here; any other `$option` is refused with
501.1 naming it (ODK Central's behaviour), and a malformed value with 400.8/400.11 — a
rejected request runs no query. Booleans accept any case (`True` from pyODK).
`$skiptoken` is the opaque keyset cursor this server puts in `@odata.nextLink`: `01` and the
base64url of a small JSON object, as in Central.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

SUPPORTED = frozenset(
    {"$top", "$skip", "$skiptoken", "$count", "$filter", "$orderby", "$select", "$expand", "$wkt", "$format"}
)
MAX_TOP = 1_000_000_000
TOKEN_VERSION = "01"  # noqa: S105 - a format marker, not a secret


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: its last row's position in the feed order."""

    created_at: datetime
    submission_id: int
    seq: int | None = None

    def encode(self) -> str:
        body: dict[str, Any] = {"c": self.created_at.isoformat(), "s": self.submission_id}
        if self.seq is not None:
            body["q"] = self.seq
        raw = json.dumps(body, separators=(",", ":")).encode()
        return TOKEN_VERSION + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            if not token.startswith(TOKEN_VERSION) or len(token) > 500:
                raise ValueError("unknown token format")
            payload = token[len(TOKEN_VERSION) :]
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            created_at = datetime.fromisoformat(body["c"])
            submission_id = body["s"]
            seq = body.get("q")
            if not isinstance(submission_id, int) or not (seq is None or isinstance(seq, int)):
                raise ValueError("bad token fields")
            if created_at.tzinfo is None:
                raise ValueError("naive time")
        except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
            raise Problem(
                problems.UNEXPECTED_VALUE,
                "The $skiptoken is not one this server issued (follow @odata.nextLink as given).",
                {"field": "$skiptoken"},
            ) from exc
        return cls(created_at, submission_id, seq)


@dataclass(frozen=True)
class FeedOptions:
    top: int | None = None
    skip: int = 0
    cursor: Cursor | None = None
    count: bool = False
    filter: str | None = None
    orderby: str | None = None
    select: tuple[str, ...] | None = None
    expand: bool = False
    wkt: bool = False


def _boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0", ""):
        return False
    raise Problem(
        problems.INVALID_DATA_TYPE, f"{name} must be true or false.", {"field": name, "value": value}
    )


def _count(name: str, value: str) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 12:
        raise Problem(
            problems.INVALID_DATA_TYPE,
            f"{name} must be a whole number from 0 to {MAX_TOP}.",
            {"field": name, "value": value[:40]},
        )
    return min(int(text), MAX_TOP)


def parse_options(query: Mapping[str, str], keys: list[str]) -> FeedOptions:
    """The feed options of a request's query string (`keys`: every parameter name sent, to
    catch repeated options)."""
    for key in keys:
        if key.startswith("$") and key not in SUPPORTED:
            raise Problem(
                problems.NOT_IMPLEMENTED,
                f"The requested feature {key} is not supported by this server.",
                {"feature": key},
            )
    repeated = sorted({k for k in keys if keys.count(k) > 1 and k.startswith("$")})
    if repeated:
        raise Problem(
            problems.UNEXPECTED_VALUE, f"{repeated[0]} was given more than once.", {"field": repeated[0]}
        )
    fmt = query.get("$format")
    if fmt is not None and fmt.strip().lower() not in ("json", "application/json"):
        raise Problem(
            problems.NOT_IMPLEMENTED,
            "Only the JSON format is supported.",
            {"feature": "$format", "value": fmt},
        )
    expand = query.get("$expand")
    if expand is not None and expand.strip() not in ("*", ""):
        raise Problem(problems.UNSUPPORTED_ODATA_EXPAND, details={"expand": expand[:200]})
    select = query.get("$select")
    selected: tuple[str, ...] | None = None
    if select is not None and select.strip() not in ("", "*"):
        selected = tuple(p.strip() for p in select.split(",") if p.strip())
    if selected is not None and expand is not None and expand.strip():
        raise Problem(problems.UNSUPPORTED_ODATA_SELECT_EXPAND)
    token = query.get("$skiptoken")
    return FeedOptions(
        top=_count("$top", query["$top"]) if "$top" in query else None,
        skip=_count("$skip", query["$skip"]) if "$skip" in query else 0,
        cursor=Cursor.decode(token) if token else None,
        count=_boolean("$count", query.get("$count", "")),
        filter=(query.get("$filter") or "").strip() or None,
        orderby=(query.get("$orderby") or "").strip() or None,
        select=selected,
        expand=bool(expand and expand.strip()),
        wkt=_boolean("$wkt", query.get("$wkt", "")),
    )
