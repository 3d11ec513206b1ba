"""Passwords and tokens: the policy, argon2 hashing, random tokens stored as hashes."""

from __future__ import annotations

import functools
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from odk_mcp.kernel.tokens import hash_token as hash_token  # re-exported: tokens are credentials too
from odk_mcp.kernel.tokens import new_token as new_token

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing cost is bounded by input size too

_hasher = PasswordHasher()


def password_problems(password: str, email: str | None) -> list[str]:
    """Reasons the password fails the policy (empty when it passes)."""
    reasons = []
    if len(password) < MIN_PASSWORD_LENGTH:
        reasons.append(f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        reasons.append(f"must be at most {MAX_PASSWORD_LENGTH} characters long")
    if email and password.strip().lower() == email.strip().lower():
        reasons.append("must not be the email address")
    return reasons


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the account does not exist, so that unknown emails
    take as long as wrong passwords and the timing reveals nothing."""
    return _hasher.hash(secrets.token_urlsafe(16))


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
