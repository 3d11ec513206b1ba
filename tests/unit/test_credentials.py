"""Passwords and tokens (the pure rules), and the in-memory helpers of authentication:
the Basic credential cache and the failed-login throttle."""

from __future__ import annotations

import hashlib
import string
import time

import pytest

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.authentication import BasicCache, LoginThrottle
from odk_mcp.services.users.domain.credentials import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    dummy_hash,
    hash_password,
    hash_token,
    new_csrf,
    new_token,
    password_problems,
    same_secret,
    verify_password,
)

URL_SAFE = set(string.ascii_letters + string.digits + "-_")
EMAIL = "ana@example.org"


# -- password policy ---------------------------------------------------------------------


def test_a_long_enough_password_that_is_not_the_email_passes() -> None:
    assert password_problems("correct horse battery staple", EMAIL) == []


def test_the_minimum_length_is_ten_characters() -> None:
    assert MIN_PASSWORD_LENGTH == 10
    assert password_problems("x" * 10, EMAIL) == []
    assert password_problems("x" * 9, EMAIL) == ["must be at least 10 characters long"]
    assert password_problems("", EMAIL) == ["must be at least 10 characters long"]


def test_length_counts_characters_not_bytes() -> None:
    assert password_problems("ñ" * 9, EMAIL) != []
    assert password_problems("密码密码密码密码密码", EMAIL) == []


def test_an_overlong_password_is_refused() -> None:
    assert password_problems("x" * MAX_PASSWORD_LENGTH, EMAIL) == []
    assert password_problems("x" * (MAX_PASSWORD_LENGTH + 1), EMAIL) == [
        f"must be at most {MAX_PASSWORD_LENGTH} characters long"
    ]


@pytest.mark.parametrize("password", [EMAIL, "ANA@example.ORG", "  ana@example.org\t"])
def test_the_email_address_is_not_a_password_whatever_its_case_or_spacing(password: str) -> None:
    assert password_problems(password, EMAIL) == ["must not be the email address"]


def test_the_email_rule_needs_an_email() -> None:
    assert password_problems(EMAIL, None) == []
    assert password_problems(EMAIL, "") == []


def test_every_failed_rule_is_reported() -> None:
    assert password_problems("a@b.c", "A@B.C") == [
        "must be at least 10 characters long",
        "must not be the email address",
    ]


# -- password hashing --------------------------------------------------------------------


def test_a_password_verifies_against_its_own_hash_only() -> None:
    stored = hash_password("correct horse battery staple")

    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapl")
    assert not verify_password(stored, "Correct horse battery staple")
    assert not verify_password(stored, "")


def test_hashes_are_salted() -> None:
    assert hash_password("same password here") != hash_password("same password here")


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=65536,t=3,p=4$broken"])
def test_a_garbage_stored_hash_never_verifies_and_never_raises(stored: str) -> None:
    assert verify_password(stored, "anything at all") is False


def test_the_dummy_hash_is_stable_and_matches_no_guess() -> None:
    assert dummy_hash() == dummy_hash()
    assert not verify_password(dummy_hash(), "")
    assert not verify_password(dummy_hash(), "password12")


# -- tokens ------------------------------------------------------------------------------


def test_tokens_are_64_url_safe_characters() -> None:
    token = new_token()

    assert len(token) == 64
    assert set(token) <= URL_SAFE


def test_tokens_do_not_repeat() -> None:
    tokens = {new_token() for _ in range(2000)}

    assert len(tokens) == 2000


def test_csrf_tokens_are_url_safe_unique_and_unrelated_to_session_tokens() -> None:
    csrfs = {new_csrf() for _ in range(500)}

    assert len(csrfs) == 500
    assert all(len(c) >= 32 and set(c) <= URL_SAFE for c in csrfs)


def test_hash_token_is_a_deterministic_sha256_hex_digest() -> None:
    token = new_token()

    assert hash_token(token) == hash_token(token)
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(hash_token(token)) == 64
    assert hash_token(token) != token


def test_different_tokens_hash_differently() -> None:
    assert hash_token("a" * 64) != hash_token("a" * 63 + "b")
    assert len({hash_token(new_token()) for _ in range(500)}) == 500


def test_hash_token_accepts_any_text_a_request_can_carry() -> None:
    assert len(hash_token("\udc80 lone surrogate")) == 64
    assert len(hash_token("")) == 64


def test_same_secret_compares_whole_values() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abd")
    assert not same_secret("abc", "abcd")
    assert not same_secret("", "a")


# -- the Basic credential cache ----------------------------------------------------------


def test_the_basic_cache_answers_only_for_the_same_email_password_and_stored_hash() -> None:
    cache = BasicCache(ttl_seconds=60)
    cache.remember(EMAIL, "secret password", "hash-1")

    assert cache.verified(EMAIL, "secret password", "hash-1")
    assert cache.verified(EMAIL.upper(), "secret password", "hash-1")
    assert not cache.verified(EMAIL, "Secret password", "hash-1")
    assert not cache.verified("bob@example.org", "secret password", "hash-1")


def test_a_changed_stored_hash_invalidates_the_cached_credential_for_good() -> None:
    cache = BasicCache(ttl_seconds=60)
    cache.remember(EMAIL, "old password", "hash-1")

    assert not cache.verified(EMAIL, "old password", "hash-2")
    assert not cache.verified(EMAIL, "old password", "hash-1")


def test_the_basic_cache_keeps_no_password_in_clear() -> None:
    cache = BasicCache(ttl_seconds=60)
    cache.remember(EMAIL, "very secret password", "hash-1")

    assert "very secret password" not in repr(vars(cache))


def test_cached_credentials_expire() -> None:
    cache = BasicCache(ttl_seconds=0.05)
    cache.remember(EMAIL, "secret password", "hash-1")
    assert cache.verified(EMAIL, "secret password", "hash-1")

    time.sleep(0.06)

    assert not cache.verified(EMAIL, "secret password", "hash-1")


def test_a_zero_ttl_turns_the_cache_off() -> None:
    cache = BasicCache(ttl_seconds=0)
    cache.remember(EMAIL, "secret password", "hash-1")

    assert not cache.verified(EMAIL, "secret password", "hash-1")


def test_a_full_cache_evicts_the_least_recently_used_credential() -> None:
    cache = BasicCache(ttl_seconds=60, max_entries=2)
    cache.remember("a@example.org", "password a", "hash-a")
    cache.remember("b@example.org", "password b", "hash-b")
    assert cache.verified("a@example.org", "password a", "hash-a")  # a is now the most recent

    cache.remember("c@example.org", "password c", "hash-c")

    assert cache.verified("a@example.org", "password a", "hash-a")
    assert not cache.verified("b@example.org", "password b", "hash-b")
    assert cache.verified("c@example.org", "password c", "hash-c")


def test_remembering_again_refreshes_a_credentials_place_in_the_cache() -> None:
    cache = BasicCache(ttl_seconds=60, max_entries=2)
    cache.remember("a@example.org", "password a", "hash-a")
    cache.remember("b@example.org", "password b", "hash-b")
    cache.remember("a@example.org", "password a", "hash-a2")  # a's password changed and was verified

    cache.remember("c@example.org", "password c", "hash-c")

    assert cache.verified("a@example.org", "password a", "hash-a2")
    assert not cache.verified("b@example.org", "password b", "hash-b")


# -- the failed-login throttle -----------------------------------------------------------


def refused(throttle: LoginThrottle, email: str, client_ip: str | None) -> Problem | None:
    try:
        throttle.check(email, client_ip)
    except Problem as problem:
        return problem
    return None


def test_the_account_is_refused_once_its_failures_reach_the_limit() -> None:
    throttle = LoginThrottle("3/minute", "100/minute")
    for _ in range(3):
        assert refused(throttle, EMAIL, "10.0.0.1") is None
        throttle.failed(EMAIL, "10.0.0.1")

    problem = refused(throttle, EMAIL, "10.0.0.9")

    assert problem is not None
    assert problem.kind is problems.TOO_MANY_LOGIN_ATTEMPTS
    retry_after = int(problem.headers["Retry-After"])
    assert 0 < retry_after <= 61
    assert problem.details == {"retryAfter": retry_after}


def test_the_account_limit_ignores_case_and_surrounding_spaces() -> None:
    throttle = LoginThrottle("2/minute", "100/minute")
    throttle.failed(" ANA@example.org", None)
    throttle.failed("ana@EXAMPLE.org ", None)

    assert refused(throttle, EMAIL, None) is not None
    assert refused(throttle, "bob@example.org", None) is None


def test_the_address_limit_counts_failures_across_accounts() -> None:
    throttle = LoginThrottle("100/minute", "2/minute")
    throttle.failed("a@example.org", "10.0.0.1")
    throttle.failed("b@example.org", "10.0.0.1")

    assert refused(throttle, "c@example.org", "10.0.0.1") is not None
    assert refused(throttle, "c@example.org", "10.0.0.2") is None
    assert refused(throttle, "c@example.org", None) is None


def test_checking_does_not_itself_count_as_a_failure() -> None:
    throttle = LoginThrottle("1/minute", "1/minute")

    for _ in range(5):
        assert refused(throttle, EMAIL, "10.0.0.1") is None


def test_attempts_in_flight_count_against_the_limit() -> None:
    throttle = LoginThrottle("2/minute", "100/minute")

    with throttle.attempt(EMAIL, "10.0.0.1"), throttle.attempt(EMAIL, "10.0.0.2"):
        problem = refused(throttle, EMAIL, "10.0.0.3")
        assert refused(throttle, "bob@example.org", "10.0.0.3") is None

    assert problem is not None
    assert problem.headers["Retry-After"] == "1"  # no failure recorded: only a short wait
    assert refused(throttle, EMAIL, "10.0.0.3") is None  # both ended without failing


def test_an_attempt_that_fails_inside_the_block_keeps_counting_after_it() -> None:
    throttle = LoginThrottle("1/minute", "100/minute")

    def wrong_password() -> None:
        with throttle.attempt(EMAIL, None):
            throttle.failed(EMAIL, None)
            raise Problem(problems.AUTHENTICATION_FAILED)

    with pytest.raises(Problem) as failure:
        wrong_password()

    assert failure.value.kind is problems.AUTHENTICATION_FAILED
    assert refused(throttle, EMAIL, None) is not None


def test_a_refused_attempt_does_not_hold_a_place() -> None:
    throttle = LoginThrottle("1/minute", "100/minute")

    def another_attempt() -> None:
        with throttle.attempt(EMAIL, None):
            pass

    with throttle.attempt(EMAIL, None), pytest.raises(Problem):
        another_attempt()
    another_attempt()  # the refused one left nothing behind: this is admitted
    assert refused(throttle, EMAIL, None) is None
