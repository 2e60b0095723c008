"""The cross-process limiter: one GCRA per :class:`LimitKey` in Redis, run as Lua.

Every process, on any machine, asks one Redis for each slot; the Lua script reads the
clock of the Redis server (``TIME``), so the budget is paced on one clock whatever the
hosts' clocks say. The pacing is the same as the in-process limiter's (see ``_pacing``):
a GCRA with emission interval ``I`` and tolerance ``(burst - 1) * I`` is the same leaky
bucket, so no span of the period ever holds more than the limit.

Per key there are two Redis keys, both with a TTL so nothing accumulates:

* ``{prefix}:ratelimit:{<api>|<identity>|<tenant>}`` the theoretical arrival time, in
  microseconds of the server clock; it expires once that time has passed (an expired
  key and a key in the past mean the same: an empty bucket);
* ``...:pause`` the end of the current 429 pause, shared by every process.

The braces make both keys one Redis Cluster hash slot. A key name holds the
:class:`LimitKey` fields only: ``identity`` is an app id or a token's hash, never a secret.

Within one process, one task per key talks to Redis at a time (the others queue on a
local lock), so waiting callers cost Redis one call per slot and process, not one each.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from .._constants import LOGGER_NAME
from ..errors import RateLimiterError
from ._local import LocalRateLimiter
from ._pacing import Pacing, clamp_reset
from ._protocol import LimitKey, RateLimit
from ._turns import Turns

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisRateLimiter"]

logger = logging.getLogger(LOGGER_NAME + ".ratelimit")

# Keys outlive the instant they stop mattering by this much (ms): a margin, not a need.
_TTL_SLACK_MS = 1000
# Per-key local locks are pruned once a limiter holds more than this many.
_PRUNE_ABOVE = 64

# KEYS[1] GCRA state, KEYS[2] pause end. ARGV[1] interval µs, ARGV[2] tolerance µs,
# ARGV[3] TTL slack ms. Returns 0 when a slot was taken, else µs to wait before asking
# again (the pause's end, or when the bucket has room).
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  return math.ceil(paused - now)
end
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local allow_at = tat - tonumber(ARGV[2])
if allow_at > now then
  return math.ceil(allow_at - now)
end
local new_tat = math.ceil(tat + interval)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', math.ceil((new_tat - now) / 1000) + tonumber(ARGV[3]))
return 0
"""

# KEYS[1] pause end. ARGV[1] pause µs, ARGV[2] TTL slack ms. Returns {state, µs left}:
# state 2 = a new pause, 1 = an ongoing pause extended, 0 = already covered. Reports of
# one episode therefore merge into the latest end instead of adding up.
_REPORT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause_end = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if pause_end <= paused then
  return {0, math.ceil(paused - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', pause_end),
           'PX', math.ceil(tonumber(ARGV[1]) / 1000) + tonumber(ARGV[2]))
if paused > now then
  return {1, math.ceil(pause_end - now)}
end
return {2, math.ceil(pause_end - now)}
"""


class RedisRateLimiter:
    """Paces requests per :class:`LimitKey` across processes and machines through Redis.

    ``redis`` is a URL (``redis://host:6379/0``; the client is created and closed here)
    or an existing ``redis.asyncio.Redis`` (owned by the caller, never closed here).
    Every process sharing a budget must use the same ``rate`` (and ``burst``/``margin``).
    Needs the ``redis`` extra and Redis 5 or newer.

    If Redis cannot be used, :meth:`acquire` and :meth:`report_rate_limited` raise
    :class:`~feishu_vc_async.errors.RateLimiterError`. With ``fallback_local=True`` they
    log a warning (logger ``feishu_vc_async.ratelimit``) instead and use an in-process
    :class:`LocalRateLimiter` for ``reconnect_interval`` seconds before trying Redis
    again; meanwhile each process paces alone, so several processes together may exceed
    the limit (the 429 handling then takes over).

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
        self._pacing = Pacing.of(rate or RateLimit(), burst, margin)
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
        self._acquire_script: AsyncScript = self._client.register_script(_ACQUIRE_LUA)
        self._report_script: AsyncScript = self._client.register_script(_REPORT_LUA)
        self._turns_by_key: dict[LimitKey, Turns] = {}
        self._local: LocalRateLimiter | None = None
        self._local_until = -math.inf  # loop time until which the fallback is in use
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

    async def acquire(self, key: LimitKey, *, continuing: bool = False) -> None:
        """Wait for a slot of ``key`` in the budget every process shares; in this
        process, a ``continuing`` read is served before new ones (``_turns``)."""
        self._check_open()
        if not self._fallen_back() and await self._acquire_redis(key, continuing):
            return
        await self._local_limiter().acquire(key, continuing=continuing)

    async def report_rate_limited(self, key: LimitKey, reset_seconds: float | None) -> None:
        """Pause ``key`` in every process for the (capped) reset; reports merge."""
        self._check_open()
        seconds = clamp_reset(reset_seconds)
        if not self._fallen_back():
            _, pause_key = self.redis_keys(key)
            try:
                state, left_us = await self._report_script(
                    keys=[pause_key], args=[math.ceil(seconds * 1e6), _TTL_SLACK_MS]
                )
            except self._errors as exc:
                self._fail(exc)
            else:
                if int(state) == 2:
                    logger.warning(
                        "gateway rate limit hit for %s; pausing it in every process for %.3fs",
                        key,
                        int(left_us) / 1e6,
                    )
                return
        await self._local_limiter().report_rate_limited(key, reset_seconds)

    async def aclose(self) -> None:
        """Close the Redis client if this limiter created it, and the fallback."""
        if self._closed:
            return
        self._closed = True
        local, self._local = self._local, None
        try:
            if local is not None:
                await local.aclose()
        finally:
            if self._owns_client:
                await self._client.aclose()

    async def _acquire_redis(self, key: LimitKey, continuing: bool) -> bool:
        """Take a slot in Redis; False when Redis failed and the fallback must serve."""
        state_key, pause_key = self.redis_keys(key)
        pacing = self._pacing
        interval_us = pacing.interval * 1e6
        args: list[str | int] = [
            repr(interval_us),
            repr((pacing.burst - 1.0) * interval_us),
            _TTL_SLACK_MS,
        ]
        # One caller of a key per process asks Redis at a time; the others wait their turn.
        turns = self._turns(key)
        await turns.take(continuing)
        try:
            while True:
                if self._fallen_back():  # another task of this process saw Redis fail
                    return False
                try:
                    wait_us = int(
                        await self._acquire_script(keys=[state_key, pause_key], args=args)
                    )
                except self._errors as exc:
                    self._fail(exc)
                    return False
                if wait_us <= 0:
                    return True
                await asyncio.sleep(wait_us / 1e6)
        finally:
            turns.release()

    def _fail(self, exc: BaseException) -> None:
        """Raise, or switch to the in-process fallback for a while (with a warning)."""
        reason = f"{type(exc).__name__}: {exc}"
        if not self._fallback_local:
            raise RateLimiterError(
                f"the Redis rate limiter at {self._where} cannot be used ({reason})",
                hint="pass fallback_local=True to fall back to an in-process limiter",
            ) from exc
        logger.warning(
            "the Redis rate limiter at %s cannot be used (%s); pacing in this process only "
            "for %gs: processes no longer share one budget",
            self._where,
            reason,
            self._reconnect_interval,
        )
        self._local_until = asyncio.get_running_loop().time() + self._reconnect_interval

    def _fallen_back(self) -> bool:
        return self._local_until > asyncio.get_running_loop().time()

    def _local_limiter(self) -> LocalRateLimiter:
        if self._local is None:
            self._local = LocalRateLimiter(self._pacing)
        return self._local

    def _turns(self, key: LimitKey) -> Turns:
        turns = self._turns_by_key.get(key)
        if turns is None:
            if len(self._turns_by_key) >= _PRUNE_ABOVE:
                for k in [k for k, v in self._turns_by_key.items() if not v.busy]:
                    del self._turns_by_key[k]
            turns = self._turns_by_key[key] = Turns()
        return turns

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
