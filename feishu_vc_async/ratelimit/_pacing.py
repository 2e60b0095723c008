"""The pacing arithmetic shared by the in-process and the Redis limiter.

Why one request of burst and a steady spacing of ``period * (1 + margin) / requests``:

A leaky bucket (GCRA) with capacity ``b`` and rate ``r`` admits, in any closed span of
``S`` seconds, at most ``b + r*S`` requests: the level after the k-th admission of the
span is at least ``k - r*S`` and never above ``b``. The gateway refuses the ``N+1``-th
request of a window of ``T`` seconds, sliding or fixed (a fixed window is one such span),
so we need ``b + r*S < N + 1`` for every ``S`` the gateway may see as ``T``. Our send and
the gateway's receive differ by a latency that varies; a jitter of up to ``D`` makes a
``T`` window at the gateway a ``T + D`` span of our sends. With ``D = margin * T``:

    r = (N + 1 - b) / (T * (1 + margin))     →  b + r*(T + D') < N + 1 for all D' < D

The utilization is ``(N + 1 - b) / (N * (1 + margin))``. ``b`` need not be whole: with
``b = 1`` no two sends are ever closer than one interval, but every late wake-up of the
event loop is then lost for good (epoll rounds timers up to 1 ms: measured 95.6 % at
100/3 s). ``b = 1.25`` lets a late send be made up by a quarter interval, which the
loop's jitter needs, while costing only a quarter request per window. aiolimiter's default
(``b = N``, ``r = N/T``) lets ``2N`` requests through in the first ``T``. With the
defaults (b=1.25, margin 1 %) the limiter uses 98.8 % of the quota (measured 98.8 % at
100/3 s and 100/1 s with 50 tasks) and tolerates up to 1 % of the period (0.6 s at
100/60 s) of send-to-gateway jitter.

The share of one of ``n`` processes that cannot talk to each other (``Pacing.share``):
``N // n`` requests a period, paced as above with the same margin, so each process
sends at most ``N // n`` in any window and the ``n`` together at most ``N``. (``rate/n``
with the whole's burst would not do: ``n`` bursts of at least one request each exceed
the whole burst of 1.25.) Its burst, from 1 to ``N // n``, is the one that makes its
steady rate ``r_s`` at most ``r/n``, as near as it can: the switch from the shared
pacing to the shares needs that. A window that spans the switch holds at most
``b + r*(T - S)`` sends paced together and ``n * r_s * S <= r*S`` paced apart, when
each share starts as if it had just spent its burst. Where even a burst of ``N // n``
is too fast (a whole burst near ``N``, or more processes than ``N``), the share's period
grows instead. With more processes than ``N``, the long-run rate fits, but nothing
keeps ``n`` single sends out of one window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._constants import RATELIMIT_RESET_CAP, RATELIMIT_RESET_FALLBACK
from ._protocol import RateLimit

__all__ = ["DEFAULT_BURST", "DEFAULT_MARGIN", "Pacing", "clamp_reset"]

# A quarter of an interval of slack absorbs the event loop's timer lateness (see above).
DEFAULT_BURST = 1.25
# Tolerated send-to-gateway jitter, as a fraction of the period; costs the same fraction
# of throughput.
DEFAULT_MARGIN = 0.01


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a :class:`RateLimit` is paced: a burst of ``burst``, then one per ``interval``."""

    rate: RateLimit
    burst: float = DEFAULT_BURST
    margin: float = DEFAULT_MARGIN

    @classmethod
    def of(cls, rate: RateLimit, burst: float | None = None, margin: float | None = None) -> Pacing:
        """``None`` picks the default; the default burst is capped at ``rate.requests``."""
        if burst is None:
            burst = min(DEFAULT_BURST, float(rate.requests))
        return cls(rate, burst, DEFAULT_MARGIN if margin is None else margin)

    def __post_init__(self) -> None:
        if not 1 <= self.burst <= self.rate.requests:
            raise ValueError(
                f"burst={self.burst!r}: must be a number from 1 to {self.rate.requests}"
            )
        if not (math.isfinite(self.margin) and 0.0 <= self.margin < 1.0):
            raise ValueError(f"margin={self.margin!r}: must be at least 0 and below 1")

    @property
    def interval(self) -> float:
        """Seconds between steady-state sends."""
        n, b = self.rate.requests, self.burst
        return self.rate.period * (1.0 + self.margin) / (n + 1 - b)

    def share(self, processes: int) -> Pacing:
        """The pacing of one of ``processes`` that pace apart (see above); itself for 1."""
        if processes <= 1:
            return self
        n, b, period = self.rate.requests, self.burst, self.rate.period
        requests = max(n // processes, 1)
        # The burst that brings the share's steady rate to 1/processes of the whole's.
        burst = requests + 1 - (n + 1 - b) / processes
        if burst <= requests:
            return Pacing(RateLimit(requests, period), max(burst, 1.0), self.margin)
        # Even a burst of the whole share is faster: a longer period slows it down.
        slower = RateLimit(requests, period * processes / (n + 1 - b))
        return Pacing(slower, float(requests), self.margin)

    @property
    def utilization(self) -> float:
        """The long-run share of the quota this pacing uses."""
        n, b = self.rate.requests, self.burst
        return (n + 1 - b) / (n * (1.0 + self.margin))


def clamp_reset(reset_seconds: float | None) -> float:
    """The pause for a 429: the server's hint, capped; a default when it has none."""
    if reset_seconds is None or math.isnan(reset_seconds):
        return RATELIMIT_RESET_FALLBACK
    return min(max(reset_seconds, 0.0), RATELIMIT_RESET_CAP)
