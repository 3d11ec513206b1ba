"""Reading credentials off an HTTP request (the users service decides what they are worth)."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from odk_mcp.services.users import CredentialKind, Credentials

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIES = ("__Host-session", "session")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
KEY_SCOPE = "odk.key"


def is_secure(request: Request) -> bool:
    """HTTPS directly, or per X-Forwarded-Proto from a trusted proxy (applied by the gateway's
    proxy-headers middleware, which rewrites the scheme)."""
    return request.url.scheme == "https"


def _basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    email, sep, password = decoded.partition(":")
    return (email, password) if sep and email else None


async def credentials_from(request: Request) -> Credentials:
    secure = is_secure(request)
    unsafe = request.method.upper() not in SAFE_METHODS
    key = request.scope.get(KEY_SCOPE)
    if key is not None:
        return Credentials(CredentialKind.KEY, token=key, secure=secure, unsafe_method=unsafe)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Credentials(
                CredentialKind.BEARER, token=value.strip(), secure=secure, unsafe_method=unsafe
            )
        if scheme.lower() == "basic":
            pair = _basic(value)
            if pair is not None:
                return Credentials(
                    CredentialKind.BASIC, email=pair[0], password=pair[1], secure=secure, unsafe_method=unsafe
                )
        return Credentials(CredentialKind.MALFORMED, secure=secure, unsafe_method=unsafe)
    public_token = request.query_params.get("st")
    if public_token:
        return Credentials(
            CredentialKind.PUBLIC_LINK, token=public_token, secure=secure, unsafe_method=unsafe
        )
    for name in SESSION_COOKIES:
        token = request.cookies.get(name)
        if token:
            csrf = request.headers.get("x-csrf-token")
            if csrf is None and unsafe and request.headers.get("content-type", "").startswith(FORM_TYPES):
                form = await request.form()
                field = form.get("__csrf")
                csrf = field if isinstance(field, str) else None
            return Credentials(
                CredentialKind.COOKIE, token=token, secure=secure, unsafe_method=unsafe, csrf=csrf
            )
    return Credentials(CredentialKind.NONE, secure=secure, unsafe_method=unsafe)
