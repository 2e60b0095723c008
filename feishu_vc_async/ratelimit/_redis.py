"""The cross-process limiter: one GCRA per :class:`LimitKey` in Redis, run as Lua.

Every process, on any machine, asks one Redis for each slot; the Lua script reads the
clock of the Redis server (``TIME``), so the budget is paced on one clock whatever the
hosts' clocks say. The pacing is the same as the in-process limiter's (see ``_pacing``):
a GCRA with emission interval ``I`` and tolerance ``(burst - 1) * I`` is the same leaky
bucket, so no span of the period ever holds more than the limit.

Per key there are three Redis keys, each with a TTL so nothing accumulates:

* ``{prefix}:ratelimit:{<api>|<identity>|<tenant>}`` the theoretical arrival time, in
  microseconds of the server clock; it expires once that time has passed (an expired
  key and a key in the past mean the same: an empty bucket);
* ``...:pause`` the end of the current 429 pause, shared by every process;
* ``...:processes`` the limiters sharing the key: a sorted set of random names, scored
  by when each will ask again; a name not refreshed for about a period is gone.

The braces make them one Redis Cluster hash slot. A key name holds the
:class:`LimitKey` fields only: ``identity`` is an app id or a token's hash, never a secret.

Within one process, one task per key talks to Redis at a time (the others queue on a
local lock), so waiting callers cost Redis one call per slot and process, not one each.
A limiter is counted by the same call, on at most one call per key in a quarter period:
no extra round trip, and five more commands on a small sorted set in that call (about
13 µs more of the server's time; the others cost what they did).

Why each process paces at its share of the rate while Redis is away (with
``fallback_local=True``), and how it hands back to Redis: see ``_share``. In short, the
processes cannot talk while Redis is away, so each assumes the others still run and
paces at ``1/n`` of the rate (a little less: ``Pacing.share``), ``n`` being the number
of processes it last saw sharing the key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from typing import TYPE_CHECKING, Any

from .._cancel import cancellable
from .._constants import LOGGER_NAME
from ..errors import RateLimiterError
from ._pacing import Pacing, clamp_reset
from ._protocol import LimitKey, RateLimit
from ._redis_lua import ACQUIRE_LUA, REPORT_LUA
from ._share import KeyState, ShareBucket

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisRateLimiter"]

logger = logging.getLogger(LOGGER_NAME + ".ratelimit")

# Keys outlive the instant they stop mattering by this much (ms): a margin, not a need.
_TTL_SLACK_MS = 1000
# Once a limiter knows more keys than this, those unused for a handover are forgotten
# (their count too: one seen again starts from 1, and is counted at its first ask).
_PRUNE_ABOVE = 64
# A limiter is counted on at most one ask per key in this fraction of the period.
_COUNT_EVERY = 0.25


class RedisRateLimiter:
    """Paces requests per :class:`LimitKey` across processes and machines through Redis.

    ``redis`` is a URL (``redis://host:6379/0``; the client is created and closed here)
    or an existing ``redis.asyncio.Redis`` (owned by the caller, never closed here).
    Every process sharing a budget must use the same ``rate`` (and ``burst``/``margin``).
    Needs the ``redis`` extra and Redis 5 or newer.

    If Redis cannot be used, :meth:`acquire` and :meth:`report_rate_limited` raise
    :class:`~feishu_vc_async.errors.RateLimiterError`. With ``fallback_local=True`` they
    log a warning (logger ``feishu_vc_async.ratelimit``) instead and pace in this
    process for ``reconnect_interval`` seconds before trying Redis again: each key at
    this process's share of the rate, for the number of processes last seen sharing it
    (:meth:`sharing`), so that together they stay within the limit if they all still
    run. For ``reconnect_interval`` and a period after Redis answers again, a slot takes
    both Redis and the share, while the other processes come back.

    A caller cancelled while waiting takes no slot, except in the rare case where the
    cancellation lands while the taking script is in flight: that slot is then lost,
    which under-uses the budget but never exceeds it.
    """

    def __init__(
        self,
        redis: str | Redis,
        rate: RateLimit | None = None,
        *,
        prefix: str = "feishu_vc",
        fallback_local: bool = False,
        burst: float | None = None,
        margin: float | None = None,
        reconnect_interval: float = 30.0,
        connect_timeout: float = 2.0,
    ) -> None:
        try:
            import redis as sync_redis
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "RedisRateLimiter needs redis-py: pip install 'feishu-vc-async[redis]'"
            ) from exc
        if not prefix or any(c in prefix for c in "{} \n"):
            raise ValueError(f"prefix={prefix!r}: must be non-empty, without braces or spaces")
        self._pacing = pacing = Pacing.of(rate or RateLimit(), burst, margin)
        self._prefix = prefix
        self._fallback_local = fallback_local
        self._reconnect_interval = reconnect_interval
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        if isinstance(redis, str):
            self._client: Redis = aioredis.Redis.from_url(
                redis, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout * 2
            )
            self._owns_client = True
        elif isinstance(_as_object(redis), sync_redis.Redis | sync_redis.RedisCluster):
            raise TypeError(
                "RedisRateLimiter needs an asyncio client: redis.asyncio.Redis, not redis.Redis"
            )
        else:
            self._client = redis
            self._owns_client = False
        self._where = _describe(self._client)
        self._acquire_script: AsyncScript = self._client.register_script(ACQUIRE_LUA)
        self._report_script: AsyncScript = self._client.register_script(REPORT_LUA)
        self._member = secrets.token_hex(8)  # this limiter's name among those sharing a key
        period = pacing.rate.period * (1.0 + pacing.margin)
        # Counted every quarter period; gone when not heard of for a period and two
        # waits (a waiting caller asks again at least once an interval).
        self._count_every = pacing.rate.period * _COUNT_EVERY
        self._count_life_us = math.ceil((period + 2.0 * pacing.interval) * 1e6)
        self._handover = reconnect_interval + period
        self._shares: dict[int, Pacing] = {}
        self._keys: dict[LimitKey, KeyState] = {}
        self._local_until = -math.inf  # loop time until which Redis is not asked
        self._handover_until = -math.inf  # loop time until which slots take the share too
        self._away = False  # Redis failed and has not answered since
        self._epoch = 0  # switches from Redis to the shares so far
        self._closed = False

    @property
    def rate(self) -> RateLimit:
        return self._pacing.rate

    @property
    def pacing(self) -> Pacing:
        return self._pacing

    @property
    def using_fallback(self) -> bool:
        """True while Redis is unusable and the in-process fallback paces instead."""
        return self._local_until > asyncio.get_running_loop().time()

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self._where}, {self._pacing.rate}, prefix={self._prefix!r})"

    def redis_keys(self, key: LimitKey) -> tuple[str, str]:
        """The Redis key names of ``key``: (GCRA state, pause end)."""
        base = f"{self._prefix}:ratelimit:{{{key}}}"
        return base, base + ":pause"

    def processes_key(self, key: LimitKey) -> str:
        """The Redis key name of the limiters sharing ``key`` (a sorted set)."""
        return f"{self._prefix}:ratelimit:{{{key}}}:processes"

    def sharing(self, key: LimitKey) -> int:
        """How many processes (limiters) this one last saw sharing ``key``, itself
        included; 1 before Redis has counted them."""
        state = self._keys.get(key)
        return 1 if state is None else state.sharing

    async def acquire(self, key: LimitKey, *, continuing: bool = False) -> None:
        """Wait for a slot of ``key`` in the budget every process shares; in this
        process, a ``continuing`` read is served before new ones (``_turns``)."""
        self._check_open()
        state = self._state(key)
        # One caller of a key per process asks at a time; the others wait their turn.
        await state.turns.take(continuing)
        try:
            await self._take_slot(key, state)
        finally:
            state.turns.release()

    async def report_rate_limited(self, key: LimitKey, reset_seconds: float | None) -> None:
        """Pause ``key`` in every process for the (capped) reset; reports merge."""
        self._check_open()
        seconds = clamp_reset(reset_seconds)
        loop = asyncio.get_running_loop()
        if self._local_until <= loop.time():
            _, pause_key = self.redis_keys(key)
            try:
                state, left_us = await cancellable(
                    self._report_script(
                        keys=[pause_key], args=[math.ceil(seconds * 1e6), _TTL_SLACK_MS]
                    )
                )
            except self._errors as exc:
                self._fail(exc)
            else:
                self._answered()
                if int(state) == 2:
                    logger.warning(
                        "gateway rate limit hit for %s; pausing it in every process for %.3fs",
                        key,
                        int(left_us) / 1e6,
                    )
                return
        now = loop.time()
        if self._share(self._state(key), now).pause(now + seconds):
            logger.warning(
                "gateway rate limit hit for %s; pausing it in this process for %.3fs",
                key,
                seconds,
            )

    async def aclose(self) -> None:
        """Close the Redis client if this limiter created it."""
        if self._closed:
            return
        self._closed = True
        self._keys.clear()
        if self._owns_client:
            await self._client.aclose()

    async def _take_slot(self, key: LimitKey, state: KeyState) -> None:
        """Take a slot of Redis, of the share, or of both (see ``_share``), whichever
        pace the key now; on this caller's turn."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            bucket = self._share(state, now) if self._shared_out(now) else None
            if bucket is not None:
                wait = bucket.wait(now)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue  # Redis may be due again by now
                if self._local_until > now:
                    bucket.take(now)
                    return
            wait_us = await self._ask(key, state)
            if wait_us is None:
                continue  # Redis failed just now: the share serves
            if wait_us <= 0:
                if bucket is not None:
                    bucket.take(loop.time())  # both at one instant
                return
            await asyncio.sleep(wait_us / 1e6)

    async def _ask(self, key: LimitKey, state: KeyState) -> int | None:
        """One acquire script (counting this limiter if it is due): µs to wait, 0 for a
        slot taken, None when Redis failed and the share must serve."""
        loop = asyncio.get_running_loop()
        counted = loop.time() >= state.beat_due
        state_key, pause_key = self.redis_keys(key)
        interval_us = self._pacing.interval * 1e6
        args: list[str | int] = [
            repr(interval_us),
            repr((self._pacing.burst - 1.0) * interval_us),
            _TTL_SLACK_MS,
            self._member if counted else "",
            self._count_life_us,
        ]
        try:
            keys = [state_key, pause_key, self.processes_key(key)]
            wait_us, count = await cancellable(self._acquire_script(keys=keys, args=args))
        except self._errors as exc:
            self._fail(exc)
            return None
        self._answered()
        if counted:
            now = loop.time()
            state.beat_due = now + self._count_every
            state.observe(int(count), rising_only=now < self._handover_until)
        return int(wait_us)

    def _fail(self, exc: BaseException) -> None:
        """Raise, or pace at the shares for a while (with a warning)."""
        reason = f"{type(exc).__name__}: {exc}"
        if not self._fallback_local:
            raise RateLimiterError(
                f"the Redis rate limiter at {self._where} cannot be used ({reason})",
                hint="pass fallback_local=True to fall back to an in-process limiter",
            ) from exc
        logger.warning(
            "the Redis rate limiter at %s cannot be used (%s); pacing in this process only "
            "for %gs, each key at its share of the rate (for the processes last seen "
            "sharing it)",
            self._where,
            reason,
            self._reconnect_interval,
        )
        if not self._away:
            self._away = True
            self._epoch += 1
        self._local_until = asyncio.get_running_loop().time() + self._reconnect_interval

    def _answered(self) -> None:
        """Redis answered: after an absence, begin the handover back to it."""
        if not self._away:
            return
        self._away = False
        now = asyncio.get_running_loop().time()
        self._handover_until = now + self._handover
        for state in self._keys.values():
            state.beat_due = -math.inf  # be counted again at once: Redis may be empty
        logger.info(
            "the Redis rate limiter at %s answers again; it paces alone after a %gs handover",
            self._where,
            self._handover,
        )

    def _shared_out(self, now: float) -> bool:
        """Whether the share paces too: Redis is away, or has not been back long."""
        return self._away or now < self._handover_until

    def _share(self, state: KeyState, now: float) -> ShareBucket:
        pacing = self._shares.get(state.sharing)
        if pacing is None:
            pacing = self._shares[state.sharing] = self._pacing.share(state.sharing)
        return state.share(pacing, self._epoch, now)

    def _state(self, key: LimitKey) -> KeyState:
        now = asyncio.get_running_loop().time()
        state = self._keys.get(key)
        if state is None:
            if len(self._keys) >= _PRUNE_ABOVE:
                for k in [k for k, v in self._keys.items() if v.idle(now, self._handover)]:
                    del self._keys[k]
            state = self._keys[key] = KeyState()
        state.used = now
        return state

    def _check_open(self) -> None:
        if self._closed:
            raise RateLimiterError("this RedisRateLimiter is closed")


def _as_object(value: object) -> object:
    """Hides the declared type, to check at run time what the annotations exclude."""
    return value


def _describe(client: Any) -> str:
    """host:port/db of a client, for messages; never the URL (it may hold a password)."""
    try:
        kw = client.connection_pool.connection_kwargs
    except AttributeError:
        return type(client).__name__
    if "path" in kw:
        return f"unix:{kw['path']}/{kw.get('db', 0)}"
    return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"
