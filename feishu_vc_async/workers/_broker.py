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
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

__all__ = ["DEFAULT_QUEUE", "REDELIVER_AFTER", "RedeliveringStreamBroker", "make_broker"]

DEFAULT_QUEUE = "feishu_vc:tasks"
# Seconds a task may stay unacknowledged before another worker takes it over: longer
# than any one task runs (a meeting of thousands of pages at 100 requests a minute).
REDELIVER_AFTER = 600.0


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
                    yield AckableMessage(data=msg[b"data"], ack=self._ack_generator(msg_id, stream))
                if claimed:
                    continue
                fetched: Any = await redis.xreadgroup(
                    group, me, {stream: ">"}, block=self.block, count=1
                )
                for _, messages in fetched or ():
                    for msg_id, msg in messages:
                        yield AckableMessage(
                            data=msg[b"data"], ack=self._ack_generator(msg_id, stream)
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
