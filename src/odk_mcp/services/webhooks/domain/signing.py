"""Signing a delivery so its receiver can check who sent it and when.

The signature is `sha256=` followed by the hex HMAC-SHA256, keyed with the subscription's
secret, of `<timestamp>.<body>`: the timestamp header (Unix seconds), a full stop, and the
exact body bytes. Signing the timestamp too lets a receiver refuse old requests, so a
captured request cannot be replayed later (docs/webhooks.md shows a receiver's check).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-ODK-MCP-Signature"
TIMESTAMP_HEADER = "X-ODK-MCP-Timestamp"
DELIVERY_HEADER = "X-ODK-MCP-Delivery"
EVENT_HEADER = "X-ODK-MCP-Event"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header for this body sent at this time."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether a signature header matches (constant-time): what a receiver does."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def delivery_headers(
    secret: str, timestamp: int, body: bytes, delivery_id: str, event: str
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
