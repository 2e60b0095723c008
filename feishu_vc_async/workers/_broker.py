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
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

__all__ = [
    "DEFAULT_QUEUE",
    "REDELIVER_AFTER",
    "HeldMessage",
    "RedeliveringStreamBroker",
    "make_broker",
]

DEFAULT_QUEUE = "feishu_vc:tasks"
# Seconds a task's message may go unheld before another worker takes it over (its
# worker was killed): its worker holds it three times as often while it lives.
REDELIVER_AFTER = 60.0


class HeldMessage(AckableMessage):
    """A message read from the stream, and how its worker keeps it (module doc)."""

    hold: Callable[[], Awaitable[None]]
    hold_every: float


class RedeliveringStreamBroker(RedisStreamBroker):
    """A Redis stream broker whose unacknowledged messages come back (module doc)."""

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        stream, group, me = self.queue_name, self.consumer_group_name, self.consumer_name
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                answer: Any = await redis.xautoclaim(
                    stream, group, me, min_idle_time=self.idle_timeout, count=1
                )
                claimed = [(i, m) for i, m in answer[1] if m is not None]
                for msg_id, msg in claimed:
                    yield self._held(msg_id, msg[b"data"])
                if claimed:
                    continue
                fetched: Any = await redis.xreadgroup(
                    group, me, {stream: ">"}, block=self.block, count=1
                )
                for _, messages in fetched or ():
                    for msg_id, msg in messages:
                        yield self._held(msg_id, msg[b"data"])

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
    )
