"""The pure retry policy: what is retried, how long it waits. No I/O."""

from __future__ import annotations

import random

import pytest

from feishu_vc_async._constants import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    RATELIMIT_RESET_CAP,
    RATELIMIT_RESET_FALLBACK,
)
from feishu_vc_async._error_codes import error_for_code
from feishu_vc_async._retry import DefaultRetryPolicy, RetryDecision, parse_reset_header
from feishu_vc_async.errors import (
    APIError,
    AuthError,
    DecodeError,
    FeishuError,
    InternalServerError,
    InvalidQueryError,
    RateLimitedError,
    RateLimiterError,
    RequestTimeoutError,
    TransportError,
)


def _api(code: int, status: int = 400, reset: float | None = None) -> APIError:
    if reset is not None:
        return RateLimitedError(http_status=status, code=code, msg="m", reset_seconds=reset)
    return error_for_code(http_status=status, code=code, msg="m")


RETRIED: list[tuple[str, BaseException]] = [
    ("connection error", TransportError("ClientConnectorError: refused")),
    ("timeout", RequestTimeoutError("timed out")),
    ("121001 internal", _api(121001, 500)),
    ("unknown code on HTTP 503", _api(555555, 503)),
    ("HTTP 500 plain", _api(0, 500)),
    ("99991400 as HTTP 429", _api(99991400, 429, 2.0)),
    ("99991400 as HTTP 400", _api(99991400, 400, 2.0)),
    ("99991400 without reset", _api(99991400, 429)),
    ("HTML 502 page", DecodeError("body is not JSON", http_status=502, snippet="<html>")),
    ("HTML 429 page", DecodeError("body is not JSON", http_status=429)),
]

NOT_RETRIED: list[tuple[str, BaseException]] = [
    ("121002 not supported", _api(121002)),
    ("121003 param", _api(121003)),
    *[(f"{code} param", _api(code)) for code in (126003, 126004, 126005, 126006, 126007, 126015)],
    ("121004 not found", _api(121004, 404)),
    ("126009 not found", _api(126009)),
    ("121005 permission", _api(121005, 403)),
    ("99991672 scope", _api(99991672)),
    ("99991679 user scope", _api(99991679)),
    *[
        (f"{code} auth", _api(code))
        for code in (99991661, 99991663, 99991664, 99991668, 99991671, 99991677)
    ],
    ("unknown code on 400", _api(123456)),
    ("token endpoint refusal", AuthError(http_status=200, code=10014, msg="bad secret")),
    ("HTML 404 page", DecodeError("body is not JSON", http_status=404)),
    ("code 0 body with a wrong shape", DecodeError("schema", http_status=200)),
    ("invalid query", InvalidQueryError("meeting_no", "1", "9 digits", 126004)),
    ("redis limiter down", RateLimiterError("redis unreachable")),
    ("base FeishuError", FeishuError("?")),
]


@pytest.mark.parametrize(("name", "error"), RETRIED, ids=[n for n, _ in RETRIED])
def test_transient_failures_are_retried(name: str, error: BaseException) -> None:
    policy = DefaultRetryPolicy(rng=random.Random(1))
    for attempt in range(6):
        decision = policy(error, attempt)
        assert isinstance(decision, RetryDecision)
        assert decision.retry, name
        assert decision.wait >= 0
        assert decision.reason


@pytest.mark.parametrize(("name", "error"), NOT_RETRIED, ids=[n for n, _ in NOT_RETRIED])
def test_permanent_failures_are_not_retried(name: str, error: BaseException) -> None:
    decision = DefaultRetryPolicy(rng=random.Random(1))(error, 0)
    assert not decision.retry, name
    assert decision.wait == 0.0
    assert type(error).__name__ in decision.reason


def test_classes_of_the_matrix_match_error_for_code() -> None:
    assert isinstance(_api(121001, 500), InternalServerError)
    assert isinstance(_api(99991400, 429), RateLimitedError)
    assert isinstance(_api(99991663), AuthError)


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = DefaultRetryPolicy(rng=random.Random(7))
    error = TransportError("reset")
    for attempt in range(12):
        bound = min(BACKOFF_MAX, BACKOFF_INITIAL * 2**attempt)
        assert policy.backoff_bound(attempt) == pytest.approx(bound)
        waits = [policy(error, attempt).wait for _ in range(300)]
        assert all(0.0 <= w <= bound for w in waits)
        # Full jitter: the waits spread over the whole range, not around the bound.
        assert min(waits) < bound * 0.1
        assert max(waits) > bound * 0.9
    assert policy.backoff_bound(10_000) == BACKOFF_MAX


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    error = InternalServerError(http_status=500, code=121001, msg="x")
    first = [DefaultRetryPolicy(rng=random.Random(42))(error, a).wait for a in range(5)]
    second = [DefaultRetryPolicy(rng=random.Random(42))(error, a).wait for a in range(5)]
    other = [DefaultRetryPolicy(rng=random.Random(43))(error, a).wait for a in range(5)]
    assert first == second
    assert first != other


@pytest.mark.parametrize("reset", [0.25, 1.0, 3.5, 59.0])
def test_rate_limit_waits_the_reset_header(reset: float) -> None:
    policy = DefaultRetryPolicy(rng=random.Random(3))
    for attempt in range(4):
        decision = policy(_api(99991400, 429, reset), attempt)
        assert decision.retry
        # Never before the server's reset; at most 10 % later (jitter), whatever the attempt.
        assert reset <= decision.wait <= reset * 1.1 + 1e-9
        assert "99991400" in decision.reason


def test_rate_limit_reset_is_capped() -> None:
    policy = DefaultRetryPolicy(rng=random.Random(3))
    decision = policy(_api(99991400, 429, 86_400.0), 0)
    assert decision.wait <= RATELIMIT_RESET_CAP
    assert decision.wait >= RATELIMIT_RESET_CAP * 0.99
    small_cap = DefaultRetryPolicy(reset_cap=2.0, rng=random.Random(3))
    assert small_cap(_api(99991400, 429, 30.0), 0).wait == pytest.approx(2.0)


def test_rate_limit_without_reset_uses_fallback_or_backoff() -> None:
    policy = DefaultRetryPolicy(rng=random.Random(5))
    for attempt in range(8):
        wait = policy(_api(99991400, 429, None), attempt).wait
        assert (
            RATELIMIT_RESET_FALLBACK
            <= wait
            <= max(RATELIMIT_RESET_FALLBACK, policy.backoff_bound(attempt))
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3.0),
        ("0.4", 0.4),
        (" 12 ", 12.0),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_reset_header(text: str | None, expected: float | None) -> None:
    assert parse_reset_header(text) == expected


def test_policy_rejects_negative_bounds() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        DefaultRetryPolicy(initial=-1.0)
