"""The in-process limiter: one aiolimiter bucket per :class:`LimitKey`, bound to one loop."""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

from .._constants import LOGGER_NAME
from ..errors import RateLimiterError
from ._pacing import Pacing, clamp_reset
from ._protocol import LimitKey, RateLimit
from ._turns import Turns

__all__ = ["LocalRateLimiter"]

logger = logging.getLogger(LOGGER_NAME + ".ratelimit")

# Idle buckets (fully drained, nobody waiting, not paused) are dropped once a limiter
# holds more than this many keys, so a backend serving many tenants does not grow forever.
_PRUNE_ABOVE = 64


class _Bucket:
    """The pacing and the 429 pause of one key."""

    __slots__ = ("limiter", "paused_until", "turns", "waiters")

    def __init__(self, pacing: Pacing) -> None:
        # max_rate=b over b*interval: steady rate 1/interval with a burst of b (see _pacing).
        self.limiter = AsyncLimiter(pacing.burst, pacing.burst * pacing.interval)
        self.paused_until = 0.0  # loop.time() before which nobody may send
        self.turns = Turns()
        self.waiters = 0

    def idle(self, now: float) -> bool:
        return (
            self.waiters == 0
            and self.paused_until <= now
            and self.limiter.has_capacity(self.limiter.max_rate)
        )


class LocalRateLimiter:
    """Paces requests per :class:`LimitKey` within one process and one event loop.

    Safe under a sliding and a fixed gateway window: no span of ``rate.period`` seconds
    ever holds more than ``rate.requests`` sends, with up to ``margin * period`` seconds
    of send-to-gateway jitter tolerated (the reasoning is in ``_pacing``). The defaults
    (``burst=1.25``, ``margin=0.01``) use 98.8 % of the quota.

    Must be created inside the running loop it will serve (aiolimiter binds to one loop).
    Use :meth:`shared` to get a handle on the loop's registry so that every client of one
    app in this loop draws on one budget.
    """

    def __init__(
        self, rate: RateLimit | Pacing, *, burst: float | None = None, margin: float | None = None
    ) -> None:
        """``rate`` with ``burst`` and ``margin`` (defaults: see ``_pacing``), or a
        :class:`Pacing` already worked out."""
        self._pacing = rate if isinstance(rate, Pacing) else Pacing.of(rate, burst, margin)
        self._loop = _running_loop("LocalRateLimiter")
        self._buckets: dict[LimitKey, _Bucket] = {}
        self._closed = False

    @property
    def rate(self) -> RateLimit:
        return self._pacing.rate

    @property
    def pacing(self) -> Pacing:
        """The burst, the steady interval and the resulting utilization."""
        return self._pacing

    def __repr__(self) -> str:
        p = self._pacing
        return (
            f"LocalRateLimiter({p.rate}, burst={p.burst}, margin={p.margin:g}, "
            f"keys={len(self._buckets)})"
        )

    @classmethod
    def shared(
        cls, rate: RateLimit, *, burst: float | None = None, margin: float | None = None
    ) -> SharedRateLimiter:
        """A handle on this event loop's limiter for ``rate`` (created on first use).

        Every handle of one loop and one (rate, burst, margin) shares the buckets, so two
        clients with the same credentials share one budget. The handle's ``aclose()``
        drops its reference; the limiter leaves the registry with the last one.
        """
        loop = _running_loop("LocalRateLimiter.shared()")
        entries = _REGISTRY.get(loop)
        if entries is None:
            entries = _REGISTRY[loop] = {}
        config = Pacing.of(rate, burst, margin)
        entry = entries.get(config)
        if entry is None:
            entry = entries[config] = _SharedEntry(cls(config))
        entry.refs += 1
        return SharedRateLimiter(entry, entries, config)

    def paused_for(self, key: LimitKey) -> float:
        """Seconds left of the 429 pause of ``key`` (0.0 when it is not paused)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        return max(bucket.paused_until - self._loop.time(), 0.0)

    async def acquire(self, key: LimitKey, *, continuing: bool = False) -> None:
        """Wait for a slot of ``key``. A caller cancelled while waiting takes no slot.

        ``continuing``: the request continues a paged read; it is handed the next slot
        before any new read (``_turns``)."""
        self._check_usable()
        loop = self._loop
        bucket = self._bucket(key)
        bucket.waiters += 1
        try:
            await bucket.turns.take(continuing)
        except BaseException:
            bucket.waiters -= 1
            raise
        try:
            while True:
                wait = bucket.paused_until - loop.time()
                if wait > 0:
                    # Every caller of the key sleeps out the same pause; a report that
                    # extends it is seen on waking.
                    await asyncio.sleep(wait)
                    continue
                # aiolimiter only adds to the level after its wait succeeded, so a
                # cancellation here consumes nothing.
                await bucket.limiter.acquire()
                if bucket.paused_until <= loop.time():
                    return
                # A pause began while this caller queued: the slot is forfeited (that can
                # only under-use the budget) and the caller waits out the pause, after
                # which the bucket paces again from an empty level: no burst.
        finally:
            bucket.turns.release()
            bucket.waiters -= 1

    async def report_rate_limited(self, key: LimitKey, reset_seconds: float | None) -> None:
        """Pause every caller of ``key`` for the (capped) reset; reports of one episode
        merge into the latest end instead of adding up."""
        self._check_usable()
        now = self._loop.time()
        bucket = self._bucket(key)
        until = now + clamp_reset(reset_seconds)
        if until <= bucket.paused_until:
            return
        if bucket.paused_until <= now:
            logger.warning(
                "gateway rate limit hit for %s; pausing all its requests for %.3fs",
                key,
                until - now,
            )
        else:
            logger.debug(
                "rate-limit pause of %s extended by %.3fs", key, until - bucket.paused_until
            )
        bucket.paused_until = until

    async def aclose(self) -> None:
        """Forget every bucket; later calls raise :class:`RateLimiterError`."""
        self._closed = True
        self._buckets.clear()

    def _check_usable(self) -> None:
        if self._closed:
            raise RateLimiterError("this LocalRateLimiter is closed")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:
            raise RateLimiterError(
                "LocalRateLimiter used outside the event loop it was created in; "
                "create one limiter per event loop"
            )

    def _bucket(self, key: LimitKey) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune()
            bucket = self._buckets[key] = _Bucket(self._pacing)
        return bucket

    def _prune(self) -> None:
        now = self._loop.time()
        for key in [k for k, b in self._buckets.items() if b.idle(now)]:
            del self._buckets[key]


@dataclass(eq=False)
class _SharedEntry:
    limiter: LocalRateLimiter
    refs: int = field(default=0)


# Per event loop, so that no limiter is ever shared across loops; weak, so that a closed
# and collected loop takes its limiters with it.
_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Pacing, _SharedEntry]] = (
    weakref.WeakKeyDictionary()
)


class SharedRateLimiter:
    """A reference to a loop-wide :class:`LocalRateLimiter` from :meth:`LocalRateLimiter.shared`.

    ``aclose()`` drops this reference only (idempotent); the limiter itself closes and
    leaves the registry when its last handle closes.
    """

    __slots__ = ("_closed", "_config", "_entries", "_entry")

    def __init__(
        self, entry: _SharedEntry, entries: dict[Pacing, _SharedEntry], config: Pacing
    ) -> None:
        self._entry = entry
        self._entries = entries
        self._config = config
        self._closed = False

    @property
    def limiter(self) -> LocalRateLimiter:
        """The shared limiter behind this handle."""
        return self._entry.limiter

    @property
    def rate(self) -> RateLimit:
        return self._config.rate

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"refs={self._entry.refs}"
        return f"<SharedRateLimiter {self._entry.limiter!r} {state}>"

    async def acquire(self, key: LimitKey, *, continuing: bool = False) -> None:
        if self._closed:
            raise RateLimiterError("this shared rate limiter handle is closed")
        await self._entry.limiter.acquire(key, continuing=continuing)

    async def report_rate_limited(self, key: LimitKey, reset_seconds: float | None) -> None:
        if self._closed:
            raise RateLimiterError("this shared rate limiter handle is closed")
        await self._entry.limiter.report_rate_limited(key, reset_seconds)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        entry = self._entry
        entry.refs -= 1
        if entry.refs == 0:
            if self._entries.get(self._config) is entry:
                del self._entries[self._config]
            await entry.limiter.aclose()


def _running_loop(what: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{what} must be called inside a running event loop (aiolimiter binds to one "
            "loop); create it in async code, e.g. in __aenter__ or on first use"
        ) from None
