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


def configure_hashing(time_cost: int, memory_kib: int) -> None:
    """Set the argon2 cost of NEW password hashes (process-wide, once at start).

    Existing hashes carry their own parameters and keep verifying; a login with a hash made at
    another cost re-hashes the password at the configured one (`needs_rehash`).
    """
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    dummy_hash.cache_clear()


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


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False


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
