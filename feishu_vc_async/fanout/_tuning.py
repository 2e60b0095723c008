"""How many meetings a fan-out keeps in flight.

The rate limiter bounds throughput; concurrency only hides latency. Enough requests in
flight to cover ``rate × latency`` keep the limiter busy, more only queue at it. The
tuner aims at ``ceil(rate × p90 latency) + margin`` between a floor and a cap.

A latency measured from outside includes the wait for a limiter slot, which grows with
concurrency (Little's law: at saturation ``in flight = rate × latency`` whatever the
concurrency), so it is a usable estimate only while the limiter is *not* the bottleneck.
So the target is set only from steps below the limit; at the limit the tuner keeps it
and steps down toward it, one worker per step. It grows only while work is waiting
(input left, and the consumer keeping up), by half at most per step, and only while
growing pays: when a step up did not raise the send rate by a tenth, something else
is the bound (a limiter shared with other processes, a slow server), and the step is
undone and growth paused for a few steps.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

from .._constants import LOGGER_NAME
from ._progress import Progress, StatsSource

__all__ = ["Pool", "Tuner"]

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
# A step up must raise the send rate by this factor to count as useful...
_GAIN = 1.1
# ...else it is undone and growth waits this many steps.
_HOLD_STEPS = 4
# Sending at this share of the limit counts as saturated (a short window is noisy, and
# the limiter itself paces slightly below the quota).
_SATURATED = 0.85


class Pool(Protocol):
    """The workers a tuner sizes."""

    @property
    def limit(self) -> int: ...
    def resize(self, limit: int) -> None: ...
    def starved(self) -> bool:
        """Whether more workers would have work now (input left, consumer keeping up)."""
        ...


class Tuner:
    """Moves ``pool.limit`` toward ``ceil(rate × p90) + margin`` (see the module doc)."""

    __slots__ = (
        "_grown_from",
        "_hold",
        "_next",
        "_pool",
        "_progress",
        "_rate",
        "_samples",
        "_stats",
        "_warm",
        "target",
    )

    def __init__(self, pool: Pool, progress: Progress, stats: StatsSource, *, rate: float) -> None:
        self._pool = pool
        self._progress = progress
        self._stats = stats
        self._rate = rate
        # Latencies since the last step: older ones describe another concurrency.
        self._samples: list[float] = []
        # The goal, from the last step below the limit (when latencies are real).
        self.target = pool.limit
        # The first requests also wait for a token and new connections: not a latency
        # to size the pool by, so the first interval's samples are dropped.
        self._warm = False
        # (limit, send rate) before the last step up, to check that it paid.
        self._grown_from: tuple[int, float] | None = None
        self._hold = 0
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
                if not self._warm:
                    self._warm = True
                    samples.clear()
                    return
                self.retune(self._stats.recent_rate(max(1.0, 2.0 * interval)))

    def retune(self, sending: float) -> int:
        """One step from the latencies since the last one and the recent send rate."""
        ordered = sorted(self._samples)
        self._samples = []
        pool = self._pool
        current = pool.limit
        grown_from, self._grown_from = self._grown_from, None
        if sending >= _SATURATED * self._rate:
            # At the limit, latencies include the wait for the limiter (at saturation
            # in-flight = rate × latency whatever the concurrency), so they say nothing
            # about the target: keep it, and step down toward it if above.
            new = current - 1 if current > self.target else current
        elif grown_from is not None and sending < grown_from[1] * _GAIN:
            # The last step up did not pay: another bound is binding. Undo it, pause.
            new = self.target = grown_from[0]
            self._hold = _HOLD_STEPS
        else:
            # Below the limit, no queue at the limiter: the latencies are the service's.
            p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
            self.target = max(
                ADAPTIVE_FLOOR, min(ADAPTIVE_CAP, math.ceil(self._rate * p90) + ADAPTIVE_MARGIN)
            )
            if self._hold > 0:
                self._hold -= 1
                new = min(self.target, current)
            elif pool.starved():
                # Work is waiting for a worker: grow toward the target, by half at most.
                new = min(self.target, current + max(ADAPTIVE_MARGIN, current // 2))
                if new > current:
                    self._grown_from = (current, sending)
            else:
                # The input or the consumer is the bound; more workers would only hold pages.
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
            pool.resize(new)
            self._progress.concurrency = new
        return new
