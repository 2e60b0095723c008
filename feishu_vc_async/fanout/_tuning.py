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

import logging
import math
import time

import anyio

from .._constants import LOGGER_NAME
from ._progress import Progress, StatsSource

__all__ = ["Slots", "Tuner"]

logger = logging.getLogger(f"{LOGGER_NAME}.fanout")

# Fixed concurrency without a rate limit (the benchmark path): enough to hide loopback
# and WAN latency; the CPU, not the count, is the bound there.
UNLIMITED_CONCURRENCY = 32
# Adaptive bounds with a rate limit.
ADAPTIVE_START = 4
ADAPTIVE_FLOOR = 2
ADAPTIVE_CAP = 128
ADAPTIVE_MARGIN = 2
# Fewest latencies (since the last step) to act on.
_MIN_SAMPLES = 8
# Sending at this share of the limit counts as saturated (a short window is noisy, and
# the limiter itself paces slightly below the quota).
_SATURATED = 0.85


class Slots:
    """A counting gate whose size may change while slots are held.

    Only the feeder waits on it (one waiter), so one event is enough.
    """

    __slots__ = ("_wakeup", "limit", "starved", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        # Set when the feeder had to wait for a slot: more concurrency had work to do.
        self.starved = False
        self._wakeup: anyio.Event | None = None

    async def acquire(self) -> None:
        while self.used >= self.limit:
            self.starved = True
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

    __slots__ = ("_next", "_progress", "_rate", "_samples", "_slots", "_stats", "target")

    def __init__(
        self, slots: Slots, progress: Progress, stats: StatsSource, *, rate: float
    ) -> None:
        self._slots = slots
        self._progress = progress
        self._stats = stats
        self._rate = rate
        # Latencies since the last step: older ones describe another concurrency.
        self._samples: list[float] = []
        # The goal, from the last step below the limit (when latencies are real).
        self.target = slots.limit
        self._next = time.monotonic() + self.interval

    @property
    def interval(self) -> float:
        """Seconds between steps: about eight requests' worth of budget, at least 0.5 s."""
        return max(0.5, 8.0 / self._rate)

    def observe(self, latency: float) -> None:
        samples = self._samples
        samples.append(latency)
        if len(samples) >= _MIN_SAMPLES:
            now = time.monotonic()
            if now >= self._next:
                interval = self.interval
                self._next = now + interval
                self.retune(self._stats.recent_rate(max(1.0, 2.0 * interval)))

    def retune(self, sending: float) -> int:
        """One step from the latencies since the last one and the recent send rate."""
        ordered = sorted(self._samples)
        self._samples = []
        slots = self._slots
        starved, slots.starved = slots.starved, False
        current = slots.limit
        if sending >= _SATURATED * self._rate:
            # At the limit, latencies include the wait for the limiter (at saturation
            # in-flight = rate × latency whatever the concurrency), so they say nothing
            # about the target: keep it, and step down toward it if above.
            new = current - 1 if current > self.target else current
        else:
            # Below the limit, no queue at the limiter: the latencies are the service's.
            p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
            self.target = max(
                ADAPTIVE_FLOOR, min(ADAPTIVE_CAP, math.ceil(self._rate * p90) + ADAPTIVE_MARGIN)
            )
            if starved:
                # Work is waiting for a slot: grow toward the target, by half at most.
                new = min(self.target, current + max(ADAPTIVE_MARGIN, current // 2))
            else:
                # The input or the consumer is the bound; more slots would only hold pages.
                new = min(self.target, current)
        new = max(ADAPTIVE_FLOOR, min(ADAPTIVE_CAP, new))
        if new != current:
            logger.debug(
                "concurrency %d -> %d (target %d, sending %.3g/s of %.3g/s)",
                current,
                new,
                self.target,
                sending,
                self._rate,
            )
            slots.resize(new)
            self._progress.concurrency = new
        return new
