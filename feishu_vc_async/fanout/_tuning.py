"""How many meetings a fan-out keeps in flight.

The rate limiter bounds throughput; concurrency only hides latency. Enough requests in
flight to cover ``rate × latency`` keep the limiter busy, more only queue at it. The
tuner aims at ``ceil(rate × p90 latency) + margin`` between a floor and a cap.

A latency measured from outside includes the wait for a limiter slot, which grows with
concurrency (Little's law: at saturation ``in flight = rate × latency`` whatever the
concurrency), so it is a usable estimate only while the limiter is *not* the bottleneck.
While the client already sends at the limit, the tuner therefore takes one slot away
per interval instead of trusting the inflated latency; once the rate dips below the
limit, the latencies it then sees are real again and set the target.
"""

from __future__ import annotations

import math
import time

import anyio

from ._progress import Progress, StatsSource

__all__ = ["Slots", "Tuner"]

# Fixed concurrency without a rate limit (the benchmark path): enough to hide loopback
# and WAN latency; the CPU, not the count, is the bound there.
UNLIMITED_CONCURRENCY = 32
# Adaptive bounds with a rate limit.
ADAPTIVE_START = 4
ADAPTIVE_FLOOR = 2
ADAPTIVE_CAP = 128
ADAPTIVE_MARGIN = 2
# Latencies kept for the p90, and the fewest to act on.
_SAMPLES = 64
_MIN_SAMPLES = 8
# Sending at this share of the limit counts as saturated.
_SATURATED = 0.9


class Slots:
    """A counting gate whose size may change while slots are held.

    Only the feeder waits on it (one waiter), so one event is enough.
    """

    __slots__ = ("_wakeup", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._wakeup: anyio.Event | None = None

    async def acquire(self) -> None:
        while self.used >= self.limit:
            wakeup = self._wakeup = anyio.Event()
            await wakeup.wait()
        self.used += 1

    def release(self) -> None:
        self.used -= 1
        self._wake()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._wake()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and self.used < self.limit:
            self._wakeup = None
            wakeup.set()


class Tuner:
    """Moves ``slots.limit`` toward ``ceil(rate × p90) + margin`` (see the module doc)."""

    __slots__ = ("_index", "_next", "_progress", "_rate", "_samples", "_slots", "_stats", "_window")

    def __init__(
        self,
        slots: Slots,
        progress: Progress,
        stats: StatsSource,
        *,
        rate: float,
        window: float,
    ) -> None:
        self._slots = slots
        self._progress = progress
        self._stats = stats
        self._rate = rate
        self._window = window
        self._samples: list[float] = []
        self._index = 0
        # Re-tune about every four requests' worth of budget, at most twice a second.
        self._next = time.monotonic() + self.interval

    @property
    def interval(self) -> float:
        return max(0.5, 4.0 / self._rate)

    def observe(self, latency: float) -> None:
        samples = self._samples
        if len(samples) < _SAMPLES:
            samples.append(latency)
        else:
            samples[self._index] = latency
            self._index = (self._index + 1) % _SAMPLES
        now = time.monotonic()
        if now >= self._next and len(samples) >= _MIN_SAMPLES:
            self._next = now + self.interval
            self.retune(self._stats.recent_rate(self._window))

    def retune(self, sending: float) -> int:
        """Set the new limit from the recent send rate; return it."""
        ordered = sorted(self._samples)
        p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
        want = math.ceil(self._rate * p90) + ADAPTIVE_MARGIN
        current = self._slots.limit
        if sending >= _SATURATED * self._rate:
            # At the limit: latencies include queueing, so only probe downward.
            new = min(want, current - 1)
        else:
            # Below the limit: grow toward the target, at most doubling per step.
            new = min(want, current * 2)
        new = max(ADAPTIVE_FLOOR, min(ADAPTIVE_CAP, new))
        if new != current:
            self._slots.resize(new)
            self._progress.concurrency = new
        return new
