"""The retry policy: a pure function ``(error, attempt) -> RetryDecision``.

The transport's loop asks the policy after every failed attempt and stops anyway after
``max_retries`` retries, so a policy only decides *whether* an error is worth another
try and *how long* to wait first. It does no I/O, which keeps it testable with a seeded
RNG, and any callable of the same shape can replace it (``VCClient(retry_policy=...)``).

What is retried: transport failures (connection refused/reset, timeouts), HTTP 5xx
(also as a proxy's non-JSON error page), 121001 and 99991400 (HTTP 429 or 400).
Everything else is an answer that will not change by asking again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ._constants import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    RATELIMIT_RESET_CAP,
    RATELIMIT_RESET_FALLBACK,
)
from .errors import DecodeError, InternalServerError, RateLimitedError, TransportError

__all__ = ["DefaultRetryPolicy", "RetryDecision", "RetryPolicy", "parse_reset_header"]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to try again, after how many seconds, and why (for the log line)."""

    retry: bool
    wait: float
    reason: str


# ``attempt`` is the 0-based number of the attempt that just failed.
RetryPolicy = Callable[[BaseException, int], RetryDecision]


def parse_reset_header(value: str | None) -> float | None:
    """``x-ogw-ratelimit-reset`` → seconds (fractional in a scaled emulator); junk → None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return None
    return seconds


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

    def __call__(self, error: BaseException, attempt: int) -> RetryDecision:
        if isinstance(error, RateLimitedError):
            reset = error.reset_seconds
            if reset is None:
                wait = max(self.reset_fallback, self.backoff(attempt))
                return RetryDecision(True, wait, "rate limited (99991400), no reset header")
            base = min(reset, self.reset_cap)
            wait = min(self.reset_cap, base + self.rng.uniform(0.0, base * 0.1))
            return RetryDecision(True, wait, f"rate limited (99991400), reset {reset:g}s")
        if isinstance(error, InternalServerError):
            return RetryDecision(
                True,
                self.backoff(attempt),
                f"server error (code {error.code}, HTTP {error.http_status})",
            )
        if isinstance(error, TransportError):
            return RetryDecision(True, self.backoff(attempt), f"{type(error).__name__}")
        if isinstance(error, DecodeError) and (
            error.http_status >= 500 or error.http_status == 429
        ):
            # A gateway's HTML error page in front of the platform: transient.
            return RetryDecision(
                True, self.backoff(attempt), f"non-JSON HTTP {error.http_status} answer"
            )
        return RetryDecision(False, 0.0, f"not retryable: {type(error).__name__}")
