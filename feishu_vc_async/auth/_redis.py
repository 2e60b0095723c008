"""Redis for identities: a lock around a session's refresh, and a place for app tickets.

Both take a URL (a client is made for each use and closed: refreshes and ticket reads
are rare, and a client made inside the running loop never outlives it) or a caller's
``redis.asyncio.Redis`` (used as is, never closed here). Needs the ``redis`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from .._cancel import cancellable
from .._constants import LOGGER_NAME, SESSION_LOCK_TIMEOUT, SESSION_LOCK_TTL
from .._validate import non_empty, positive_seconds
from ..errors import TokenStoreError
from ..ratelimit._redis import _describe

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisLock", "RedisTicketStore", "redis_client"]

logger = logging.getLogger(LOGGER_NAME)

# Delete / extend the lock only while it is still ours (another holder's after an expiry
# must survive a late release).
_RELEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_RENEW_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_POLL_FIRST = 0.01
_POLL_MAX = 0.2


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


@contextlib.asynccontextmanager
async def redis_client(redis: str | Redis, connect_timeout: float = 2.0) -> AsyncIterator[Redis]:
    """A client for ``redis`` (a URL: made now, closed on exit; a client: as is)."""
    if not isinstance(redis, str):
        yield redis
        return
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "Redis support needs redis-py: pip install 'feishu-vc-async[redis]'"
        ) from exc
    client = aioredis.Redis.from_url(
        redis, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout * 2
    )
    try:
        yield client
    finally:
        await client.aclose()


class RedisLock:
    """A lock in Redis that processes on any host honour: ``SET key token NX PX ttl``,
    renewed every ``ttl / 3`` while held, released by a compare-and-delete script.

    A crashed holder blocks the others for at most ``ttl`` seconds; a waiter gives up
    after ``timeout`` with :class:`~feishu_vc_async.errors.TokenStoreError`, as it does
    when Redis cannot be reached (a refresh is not attempted without the lock).
    """

    __slots__ = ("_redis", "key", "timeout", "ttl")

    def __init__(
        self,
        redis: str | Redis,
        key: str,
        *,
        ttl: float = SESSION_LOCK_TTL,
        timeout: float = SESSION_LOCK_TIMEOUT,
    ) -> None:
        self._redis = redis
        self.key = non_empty("key", key)
        self.ttl = positive_seconds("ttl", ttl)
        self.timeout = positive_seconds("timeout", timeout)

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        errors = _redis_errors()
        async with redis_client(self._redis) as client:
            where = _describe(client)
            mine = secrets.token_hex(16)
            ttl_ms = max(1, round(self.ttl * 1000))
            try:
                await self._acquire(client, mine, ttl_ms)
            except errors as exc:
                raise TokenStoreError(
                    f"the lock {self.key} in Redis at {where} cannot be used: {type(exc).__name__}"
                ) from exc
            renewer = asyncio.get_running_loop().create_task(self._renew(client, mine, ttl_ms))
            try:
                yield
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                try:
                    await cancellable(client.eval(_RELEASE_LUA, 1, self.key, mine))
                except errors as exc:  # it expires after ttl anyway
                    logger.warning(
                        "could not release the lock %s at %s (%s); it expires in %gs",
                        self.key,
                        where,
                        type(exc).__name__,
                        self.ttl,
                    )

    async def _acquire(self, client: Redis, mine: str, ttl_ms: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        delay = _POLL_FIRST
        while not await cancellable(client.set(self.key, mine, nx=True, px=ttl_ms)):
            left = deadline - loop.time()
            if left <= 0:
                raise TokenStoreError(
                    f"the lock {self.key} stayed held by another process for "
                    f"{self.timeout:g} s (a refresh that hangs?)"
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)

    async def _renew(self, client: Redis, mine: str, ttl_ms: int) -> None:
        errors = _redis_errors()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                kept = await cancellable(client.eval(_RENEW_LUA, 1, self.key, mine, ttl_ms))
            except errors as exc:
                logger.warning("could not renew the lock %s: %s", self.key, exc)
                continue
            if not kept:
                logger.warning(
                    "the lock %s expired while held: another process may refresh too",
                    self.key,
                )
                return

    def __repr__(self) -> str:
        where = "client" if not isinstance(self._redis, str) else "url"
        return f"RedisLock(key={self.key!r}, ttl={self.ttl:g}, via {where})"


class RedisTicketStore:
    """A store app's current app_ticket in the Redis key ``key``: the event handler
    ``put``s it (see :func:`~feishu_vc_async.auth.handle_app_ticket_event`) and token
    providers in every process ``get`` it."""

    __slots__ = ("_redis", "key")

    def __init__(self, redis: str | Redis, key: str) -> None:
        self._redis = redis
        self.key = non_empty("key", key)

    @property
    def where(self) -> str:
        return f"the Redis key {self.key}"

    async def get(self) -> str | None:
        value = await self._run(lambda client: client.get(self.key))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value if isinstance(value, str) and value else None

    async def put(self, ticket: str) -> None:
        await self._run(lambda client: client.set(self.key, ticket))

    async def _run(self, command: Callable[[Redis], Awaitable[Any]]) -> Any:
        errors = _redis_errors()
        async with redis_client(self._redis) as client:
            try:
                return await cancellable(command(client))
            except errors as exc:
                raise TokenStoreError(
                    f"the app_ticket key {self.key} in Redis at {_describe(client)} cannot be "
                    f"used: {type(exc).__name__}"
                ) from exc

    def __repr__(self) -> str:
        return f"RedisTicketStore(key={self.key!r})"
