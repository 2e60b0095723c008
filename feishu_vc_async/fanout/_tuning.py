"""How many meetings a fan-out keeps in flight.

The rate limiter bounds throughput; concurrency only hides latency. Enough requests in
flight to cover ``rate × latency`` keep the limiter busy (Little's law), more only queue
at it. The tuner aims at ``ceil(rate × p90 latency) + margin`` between a floor and a cap.

The latency is the client's *service* latency (``ClientStats.latency_quantile``: send to
whole answer), not the time a call takes from outside: the latter includes the wait for
a limiter slot, which grows with concurrency and would make a saturated pool ask for
ever more workers. Measured this way the estimate does not feed on itself, so the pool
can go straight to the target instead of creeping toward it. It grows only while work
waits for a worker (input left, consumer keeping up), and shrinks halfway to a lower
target per step, so one slow answer does not make it swing.

Before the first answer there is no latency to size by, and a pool that waits for one
at its starting width leaves the limiter idle for a whole latency (at 800 ms and 100 per
3 s: 22 of the first 26 slots). So until then :meth:`Tuner.ramp` keeps the pool a margin
ahead of the requests actually sent (first tries: no answer has come back, so each one
sent holds its worker): a worker per slot the limiter grants, none while nothing is
sent (a token still coming, a 429 pause, a budget other clients hold, input that is
slow to come). At the first answer the pool holds about ``rate × latency`` workers,
which is the target; then the target takes over. A client that has answers already (a
warm one) starts at the target at once.

With a limiter shared by other clients or processes this sizes for the whole rate, so
a client may hold up to ``rate × latency`` requests waiting at the shared limiter: a
bounded queue, and the price of never starving the budget.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import anyio

from .._clock import Clock, loop_time
from .._constants import LOGGER_NAME
from ._progress import FanOutProgress, StatsSource

__all__ = ["Pool", "Tuner", "ramp_width", "target_for"]

logger = logging.getLogger(f"{LOGGER_NAME}.fanout")

# Fixed concurrency without a rate limit (the benchmark path): enough to hide loopback
# and WAN latency; the CPU, not the count, is the bound there.
UNLIMITED_CONCURRENCY = 32
# Adaptive bounds with a rate limit.
ADAPTIVE_START = 4
ADAPTIVE_FLOOR = 2
ADAPTIVE_CAP = 128
ADAPTIVE_MARGIN = 2
# The latency quantile the pool is sized by: headroom over the mean for jittery servers.
_QUANTILE = 0.9


class Pool(Protocol):
    """The workers a tuner sizes."""

    @property
    def limit(self) -> int: ...
    def resize(self, limit: int) -> None: ...
    def starved(self) -> bool:
        """Whether more workers would have work now (input left, consumer keeping up)."""
        ...

    def exhausted(self) -> bool:
        """Whether the input has ended (no worker will ever be added again)."""
        ...


def target_for(rate: float, latency: float) -> int:
    """Workers that keep ``rate`` requests/s busy at ``latency`` seconds each."""
    return max(ADAPTIVE_FLOOR, min(ADAPTIVE_CAP, math.ceil(rate * latency) + ADAPTIVE_MARGIN))


def ramp_width(sent: int) -> int:
    """Workers to hold when ``sent`` requests are out and none has been answered: one
    per request sent plus the margin, waiting for the next slots."""
    return max(ADAPTIVE_START, min(ADAPTIVE_CAP, sent + ADAPTIVE_MARGIN))


class Tuner:
    """Moves ``pool.limit`` toward :func:`target_for` the service latency (module doc)."""

    __slots__ = ("_clock", "_next", "_pool", "_progress", "_rate", "_stats", "target")

    def __init__(
        self,
        pool: Pool,
        progress: FanOutProgress,
        stats: StatsSource,
        *,
        rate: float,
        clock: Clock = loop_time,
    ) -> None:
        self._pool = pool
        self._progress = progress
        self._stats = stats
        self._rate = rate
        self._clock = clock
        self.target = pool.limit
        self._next = clock() + self.interval

    @property
    def interval(self) -> float:
        """Seconds between steps: about eight requests' worth of budget, at least 0.25 s."""
        return max(0.25, 8.0 / self._rate)

    async def ramp(self) -> None:
        """Until the first answer: a worker per limiter slot (module doc); then one step
        to the target. Runs as a task of the fan-out."""
        pool = self._pool
        stats = self._stats
        before = stats.requests - stats.retries
        slot = 1.0 / self._rate
        while stats.latency_quantile(_QUANTILE) is None:
            if pool.exhausted():
                return
            await anyio.sleep(slot)
            width = ramp_width(stats.requests - stats.retries - before)
            if width > pool.limit and pool.starved():
                self._resize(pool.limit, width, "no answer yet: a worker per request sent")
        self._next = self._clock() + self.interval
        self.retune()

    def observe(self) -> None:
        """Called after each page: takes a step when the interval has passed."""
        now = self._clock()
        if now >= self._next:
            self._next = now + self.interval
            self.retune()

    def retune(self) -> int:
        """One step toward the target of the current service latency."""
        pool = self._pool
        current = pool.limit
        latency = self._stats.latency_quantile(_QUANTILE)
        if latency is None:
            return current
        target = self.target = target_for(self._rate, latency)
        if target > current and pool.starved():
            new = target
        elif target < current:
            new = current - max(1, (current - target) // 2)
        else:
            new = current
        if new != current:
            why = f"target {target}: p90 latency {latency:.3f}s at {self._rate:.3g}/s"
            self._resize(current, new, why)
        return new

    def _resize(self, current: int, new: int, why: str) -> None:
        logger.debug("concurrency %d -> %d (%s)", current, new, why)
        self._pool.resize(new)
        self._progress.concurrency = new
