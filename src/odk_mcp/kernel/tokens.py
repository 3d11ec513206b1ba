"""Random bearer tokens and their stored form (a hash): sessions, app users, draft links."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """48 random bytes, URL-safe (64 characters): usable as a URL path segment."""
    return secrets.token_urlsafe(48)


def hash_token(token: str) -> str:
    """Tokens are high-entropy, so a fast hash is enough; only the hash is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
