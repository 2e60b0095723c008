"""The retry policy: a pure function ``(error, attempt) -> RetryDecision``.

The transport's loop asks the policy after every failed attempt and stops anyway after
``max_retries`` retries, so a policy only decides *whether* an error is worth another
try and *how long* to wait first. It does no I/O, which keeps it testable with a seeded
RNG, and any callable of the same shape can replace it (``VCClient(retry_policy=...)``).

What is retried is what the error says of itself: ``error.retryable`` (transport
failures, HTTP 5xx also as a proxy's non-JSON page, 121001, 99991400, and an answer to
a repeatable request that was cut short). Everything else is an answer that will not
change by asking again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ._answers import parse_reset_header
from ._constants import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    MAX_RETRIES,
    RATELIMIT_RESET_CAP,
    RATELIMIT_RESET_FALLBACK,
)
from ._validate import non_negative_int
from .errors import APIError, DecodeError, FeishuError, RateLimitedError

__all__ = ["DefaultRetryPolicy", "Retries", "RetryDecision", "RetryPolicy", "parse_reset_header"]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to try again, after how many seconds, and why (for the log line)."""

    retry: bool
    wait: float
    reason: str


# ``attempt`` is the 0-based number of the attempt that just failed.
RetryPolicy = Callable[[FeishuError, int], RetryDecision]


class DefaultRetryPolicy:
    """Capped exponential backoff with full jitter; a rate-limit answer waits its reset.

    * backoff for attempt ``n``: uniform in ``[0, min(max_backoff, initial * 2**n)]``
    * 99991400 with a reset hint: ``min(reset, reset_cap)`` plus up to 10 % jitter
      (never past the cap), so callers that were refused together do not return together
    * 99991400 without a hint: the larger of ``reset_fallback`` and the backoff
    """

    __slots__ = ("initial", "max_backoff", "reset_cap", "reset_fallback", "rng")

    def __init__(
        self,
        *,
        initial: float = BACKOFF_INITIAL,
        max_backoff: float = BACKOFF_MAX,
        reset_cap: float = RATELIMIT_RESET_CAP,
        reset_fallback: float = RATELIMIT_RESET_FALLBACK,
        rng: random.Random | None = None,
    ) -> None:
        if initial < 0 or max_backoff < 0 or reset_cap < 0 or reset_fallback < 0:
            raise ValueError("retry policy bounds must be non-negative")
        self.initial = initial
        self.max_backoff = max_backoff
        self.reset_cap = reset_cap
        self.reset_fallback = reset_fallback
        self.rng = rng or random.Random()

    def backoff_bound(self, attempt: int) -> float:
        """The upper end of the jittered wait after failed attempt ``attempt``."""
        # min() before the power would overflow for absurd attempt numbers.
        exponent = min(max(attempt, 0), 62)
        return float(min(self.max_backoff, self.initial * (2**exponent)))

    def backoff(self, attempt: int) -> float:
        return self.rng.uniform(0.0, self.backoff_bound(attempt))

    def __call__(self, error: FeishuError, attempt: int) -> RetryDecision:
        if not error.retryable:
            return RetryDecision(False, 0.0, f"not retryable: {type(error).__name__}")
        if isinstance(error, RateLimitedError):
            reset = error.reset_seconds
            if reset is None:
                wait = max(self.reset_fallback, self.backoff(attempt))
                return RetryDecision(True, wait, "rate limited (99991400), no reset header")
            base = min(reset, self.reset_cap)
            wait = min(self.reset_cap, base + self.rng.uniform(0.0, base * 0.1))
            return RetryDecision(True, wait, f"rate limited (99991400), reset {reset:g}s")
        return RetryDecision(True, self.backoff(attempt), _transient_reason(error))


def _transient_reason(error: FeishuError) -> str:
    if isinstance(error, APIError):
        return f"server error (code {error.code}, HTTP {error.http_status})"
    if isinstance(error, DecodeError):
        return f"{error.problem} (HTTP {error.http_status})"
    return type(error).__name__


@dataclass(frozen=True, slots=True)
class Retries:
    """How the request loop retries: at most ``max_retries`` retries of a transient
    failure per call, each only if ``policy`` (any ``(error, attempt) -> RetryDecision``
    callable) says so, after the wait it says."""

    max_retries: int = MAX_RETRIES
    policy: RetryPolicy = field(default_factory=lambda: DefaultRetryPolicy())

    def __post_init__(self) -> None:
        non_negative_int("max_retries", self.max_retries)
        if not callable(self.policy):
            raise TypeError("retries.policy: must be a callable (error, attempt) -> RetryDecision")
