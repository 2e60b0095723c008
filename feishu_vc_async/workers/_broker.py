"""The broker of the tasks, from its URL: ``redis://`` (the default) or ``memory://``.

A Redis URL makes a :class:`RedeliveringStreamBroker`: taskiq-redis's
``RedisStreamBroker`` (a Redis stream read through a consumer group), which is the
taskiq-redis broker that acknowledges: a message read stays in the group's pending list
until the worker ``XACK``s it, and a message pending longer than ``redeliver_after``
(its worker was killed, or lost its connection) is claimed by another worker
(``XAUTOCLAIM``) and run again. ``ListQueueBroker`` pops (``BRPOP``) a message off its
list before running it: a worker killed mid-task loses that task, so it is not used.

Two changes to the stock ``RedisStreamBroker.listen``: it claims abandoned messages on
every turn (the stock one only after reading new ones, so a queue whose every message
was taken by a killed worker is never finished), and it reads one message at a time
(the stock one takes up to 100 at once into its own pending list, all of which a kill
would hold back until they go stale). The consumer group starts at the stream's
beginning (``0``, not ``$``), so tasks enqueued before any worker ran are not skipped.

A message in hand is held: each one read comes as a :class:`HeldMessage`, whose
``hold`` the worker calls every ``hold_every`` seconds while the task runs (an
``XCLAIM ... JUSTID`` of its own message, which resets its idle time). So a long task
(a chunk of many meetings) is not taken over while its worker lives, and
``redeliver_after`` can be short: a killed worker's task comes back within it.

**Redis away.** A read that cannot reach Redis (refused, reset, timed out, or Redis
still loading its data after a restart) does not end ``listen``, which would end the
worker: it waits, ``_RETRY_FIRST`` seconds doubling to ``_RETRY_MOST`` (with jitter, so
that many workers do not knock at once on a Redis that is starting), and reads again,
with one warning when the outage begins and one when Redis answers (host, port and db,
never the URL: it may hold a password). Nothing in hand is lost meanwhile: a task whose
acknowledgement (or limiter) fails raises and stays pending, to be taken over once
Redis is back; its commit was a transaction, so running it again writes nothing twice.
A consumer group found gone (Redis restarted without its data: no AOF) is created
again, with a warning, and the workers go on with what is queued from then on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from .._constants import LOGGER_NAME

__all__ = [
    "COMMAND_TIMEOUT",
    "CONNECT_TIMEOUT",
    "DEFAULT_QUEUE",
    "REDELIVER_AFTER",
    "UNREACHABLE",
    "HeldMessage",
    "Outage",
    "RedeliveringStreamBroker",
    "describe",
    "make_broker",
]

DEFAULT_QUEUE = "feishu_vc:tasks"
# Seconds a task's message may go unheld before another worker takes it over (its
# worker was killed): its worker holds it three times as often while it lives.
REDELIVER_AFTER = 60.0
# Redis away: seconds before the first read again, doubled after each failed one up to
# the most (module doc). Short enough that a restart costs the workers little.
_RETRY_FIRST = 0.25
_RETRY_MOST = 5.0
# A connection not made in this long, or a command (beyond a read's own block) not
# answered in this long, is Redis away: without them a Redis host gone from the network
# (no reset comes) would hold a read for the kernel's TCP timeouts, minutes to hours.
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 10.0
# What "Redis cannot be reached" looks like: redis-py's (BusyLoadingError, Redis loading
# its data, is a ConnectionError) and the OS's, should one come through unwrapped.
UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)

logger = logging.getLogger(LOGGER_NAME + ".workers")


class HeldMessage(AckableMessage):
    """A message read from the stream, and how its worker keeps it (module doc)."""

    hold: Callable[[], Awaitable[None]]
    hold_every: float


class RedeliveringStreamBroker(RedisStreamBroker):
    """A Redis stream broker whose unacknowledged messages come back (module doc)."""

    async def _declare_consumer_group(self) -> None:
        # At startup too Redis may be away (a worker started before it, or while it
        # restarts): wait for it as a read does, rather than end in a traceback.
        outage = Outage(f"the task queue at {describe(self.connection_pool.connection_kwargs)}")
        while True:
            try:
                await super()._declare_consumer_group()
            except UNREACHABLE as exc:
                await outage.wait(exc)  # a stop cancels the wait: the worker exits
                continue
            outage.over()
            return

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        where = describe(self.connection_pool.connection_kwargs)
        async with Redis(connection_pool=self.connection_pool) as redis:
            outage = Outage(f"the task queue at {where}")
            lost = False  # the consumer group is gone: made again before the next read
            while True:
                try:
                    if lost:
                        await self._declare_consumer_group()
                        lost = False
                    read = await self._read(redis)
                except UNREACHABLE as exc:
                    await outage.wait(exc)  # a stop cancels the wait: the worker exits
                    continue
                except ResponseError as exc:
                    if not str(exc).startswith("NOGROUP"):
                        raise
                    logger.warning(
                        "the task queue at %s has lost its consumer group (Redis restarted "
                        "without its data?): making it again; tasks queued before are gone, "
                        "queue them again (the tables skip what is done)",
                        where,
                    )
                    lost = True
                    continue
                outage.over()
                for msg_id, data in read:
                    yield self._held(msg_id, data)

    async def _read(self, redis: Redis) -> list[tuple[Any, bytes]]:
        """The next message: one abandoned by a worker, else one new (waiting up to the
        broker's ``poll``); none when there is neither."""
        stream, group, me = self.queue_name, self.consumer_group_name, self.consumer_name
        # XAUTOCLAIM looks at most ten pending entries a call (COUNT 1): abandoned ones
        # behind ten that are held (their workers alive) are reached only by following
        # its cursor through the whole pending list, which this does before reading new.
        cursor: Any = "0-0"
        while True:
            answer: Any = await redis.xautoclaim(
                stream, group, me, min_idle_time=self.idle_timeout, start_id=cursor, count=1
            )
            claimed = [(i, m[b"data"]) for i, m in answer[1] if m is not None]
            if claimed:
                return claimed
            cursor = answer[0]
            if cursor in (b"0-0", "0-0"):
                break
        fetched: Any = await redis.xreadgroup(group, me, {stream: ">"}, block=self.block, count=1)
        return [(i, m[b"data"]) for _, messages in fetched or () for i, m in messages]

    def _held(self, msg_id: Any, data: bytes) -> HeldMessage:
        stream, group, me = self.queue_name, self.consumer_group_name, self.consumer_name

        async def hold() -> None:
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.xclaim(stream, group, me, 0, [msg_id], justid=True)

        return HeldMessage(
            data=data,
            ack=self._ack_generator(msg_id, stream),
            hold=hold,
            hold_every=self.idle_timeout / 3000,
        )


class Outage:
    """Redis away for one reader: a warning when it begins and one when it ends, not
    one per retry; and how long to wait before trying again (doubling, with jitter)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._began: float | None = None
        self._delay = _RETRY_FIRST

    def failed(self, exc: BaseException) -> None:
        """A call failed for want of Redis: warned of once per outage."""
        if self._began is not None:
            return
        self._began = asyncio.get_running_loop().time()
        # redis-py's messages name host:port (never the password); the type says which
        # of refused, reset, timed out or loading.
        logger.warning(
            "%s cannot be reached (%s: %s); waiting for it",
            self._what,
            type(exc).__name__,
            exc,
        )

    async def wait(self, exc: BaseException) -> None:
        """:meth:`failed`, then the wait before the next try."""
        self.failed(exc)
        delay, self._delay = self._delay, min(self._delay * 2, _RETRY_MOST)
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter, not secrecy

    def over(self) -> None:
        """A call succeeded: the outage, if any, is over."""
        if self._began is None:
            return
        away = asyncio.get_running_loop().time() - self._began
        self._began, self._delay = None, _RETRY_FIRST
        logger.warning("%s answers again (away %.1f s)", self._what, away)


def describe(kwargs: dict[str, Any]) -> str:
    """host:port/db of a connection pool's arguments, for messages; never the URL (it
    may hold a password)."""
    if "path" in kwargs:
        return f"unix:{kwargs['path']}/{kwargs.get('db', 0)}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def make_broker(
    url: str = "redis://127.0.0.1:6379/0",
    *,
    queue: str = DEFAULT_QUEUE,
    redeliver_after: float = REDELIVER_AFTER,
    poll: float = 1.0,
) -> AsyncBroker:
    """The broker at ``url``: ``redis://``, ``rediss://`` or ``unix://`` (a
    :class:`RedeliveringStreamBroker` on the stream ``queue``), or ``memory://`` (taskiq's
    ``InMemoryBroker``: tasks run in the process that enqueues them, for tests; nothing
    is re-delivered). ``redeliver_after``: seconds before an unacknowledged task is taken
    over by another worker; ``poll``: the longest a worker blocks reading the stream
    (how soon it notices abandoned tasks, or a stop). ``ValueError`` for another URL."""
    if redeliver_after <= 0 or poll <= 0:
        raise ValueError("redeliver_after and poll: expected seconds > 0")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        return InMemoryBroker()
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"broker URL: expected redis://host:port/db or memory://, not {scheme!r}")
    return RedeliveringStreamBroker(
        url,
        queue_name=queue,
        consumer_group_name=queue,
        consumer_id="0",
        idle_timeout=max(1, round(redeliver_after * 1000)),
        xread_block=max(1, round(poll * 1000)),
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=poll + COMMAND_TIMEOUT,
    )
