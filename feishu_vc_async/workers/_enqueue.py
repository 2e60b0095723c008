"""Queue a window's export for the workers, and watch it to its end.

:func:`enqueue_window` queues one ``discover`` task per tenant, each under a fresh
``run`` token; :class:`WindowWatch` then looks, as often as asked, at two things::

    the database   the window's note (``window_note``): written by the discover task
                   of this run once every fetch it queued is in the stream, it names
                   the meetings found; and which of them the meetings table holds
    the stream     its consumer group's ``pending`` (delivered, not acknowledged) and
                   ``lag`` (not delivered yet), by ``XINFO GROUPS``

**Why these.** The tables are the truth of what is done: a meeting is held once its
rows and its mark committed together, whichever worker did it and however often it was
delivered, so counting held meetings cannot count one twice nor one half-written. The
note is what the discovery found, written after its fetches were queued (and before its
message is acknowledged): once the note of this run is there, every fetch of the window
is in the stream. The run token tells this run's note from an earlier one of the same
window. A meeting refused for good leaves no row (its fetch is acknowledged, its
failure logged by the worker), so "every meeting held" alone may never come; the
stream tells the rest: a fetch is acknowledged only after its commit or its permanent
failure, and a transient failure leaves it pending, to come back. So the work is done
when the note is there and either every meeting found is held (complete) or the group
has nothing pending and nothing undelivered (the meetings not held failed for good).
Nothing is kept in the enqueuing process: it may be stopped and the workers go on.

The stream is shared: a drained group means other enqueuers' work is done as well, so
the watch may wait for them; it never ends early. A ``lag`` Redis cannot tell
(``None``: entries deleted) is taken as not drained.

**Redis away** (restarted, unreachable): the stream is not known while it is, and is
taken as not drained, so the watch waits (one warning as the outage begins, one as it
ends) and can still end on the tables alone (every meeting held). A stream found gone
(Redis restarted without its data) is not drained either; the tasks queued are lost
then, and this run's watch may wait for ever (its discovery's note never comes): stop
it and queue the window again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ..export import DatabaseOutput, database_output
from ._broker import COMMAND_TIMEOUT, CONNECT_TIMEOUT, UNREACHABLE, Outage, describe
from ._tasks import CHUNK, WindowNote, WorkerTasks, window_note

__all__ = ["WindowProgress", "WindowWatch", "enqueue_window", "watch_window"]

_NOTE = msgspec.msgpack.Decoder(WindowNote)


async def enqueue_window(
    tasks: WorkerTasks,
    tenants: Sequence[str],
    start: int,
    end: int,
    db_url: str,
    db_schema: str | None = None,
    chunk: int = CHUNK,
) -> str:
    """Queue the discovery of [start, end] for each tenant (``""``: a custom app's),
    its meetings to be fetched ``chunk`` a task; returns the run token the discoveries
    note (for :func:`watch_window`)."""
    run = uuid.uuid4().hex
    for tenant in tenants:
        await tasks.enqueue_discovery(tenant, start, end, db_url, db_schema, run, chunk)
    return run


@dataclass(frozen=True, slots=True)
class WindowProgress:
    """The window's export as it stands (module doc)."""

    discovered: int | None  # meetings found; None while a tenant's discovery is not noted
    held: int  # of those, in the tables
    pending: int | None  # the stream group's delivered, unacknowledged messages
    lag: int | None  # not delivered yet
    missing: tuple[tuple[str, str, int], ...] = ()  # (tenant, number, start) not held

    @property
    def drained(self) -> bool:
        return self.pending == 0 and self.lag == 0

    @property
    def complete(self) -> bool:
        return self.discovered is not None and self.held == self.discovered

    @property
    def done(self) -> bool:
        """Nothing more will happen: every meeting held, or the rest failed for good."""
        return self.discovered is not None and (self.complete or self.drained)


class WindowWatch:
    """Looks at a window's export (:meth:`look`); open with :func:`watch_window`."""

    def __init__(
        self, outputs: dict[str, DatabaseOutput], redis: Redis, queue: str, run: str, name: str
    ) -> None:
        self._outputs = outputs
        self._redis = redis
        self._queue = queue
        self._run = run
        self._name = name
        where = describe(redis.connection_pool.connection_kwargs)
        self._outage = Outage(f"the task queue at {where}")

    async def look(self) -> WindowProgress:
        # The stream first: drained then, every note read after it is final.
        pending, lag = await self._group()
        discovered: int | None = 0
        held = 0
        missing: list[tuple[str, str, int]] = []
        for tenant, output in self._outputs.items():
            saved = await output.load_note(self._name)
            note = None if saved is None else _NOTE.decode(saved)
            if note is None or note.run != self._run or discovered is None:
                discovered = None
                continue
            found = [(m[0], m[1]) for m in note.meetings]
            first = min((s for _, s in found), default=0)
            have = await output.meetings_held(first) if found else set()
            discovered += len(found)
            held += sum(1 for key in found if key in have)
            missing.extend((tenant, n, s) for n, s in found if (n, s) not in have)
        return WindowProgress(discovered, held, pending, lag, tuple(missing))

    async def _group(self) -> tuple[int | None, int | None]:
        """(pending, lag) of the queue's group; (None, None), not drained, when Redis
        is away or has no such stream (module doc)."""
        try:
            groups: Any = await self._redis.xinfo_groups(self._queue)
        except UNREACHABLE as exc:
            self._outage.failed(exc)  # the caller looks again at its own pace
            return None, None
        except ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
            groups = []
        self._outage.over()
        for group in groups:
            if _text(group.get("name")) == self._queue:
                lag = group.get("lag")
                return int(group["pending"]), None if lag is None else int(lag)
        return None, None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@asynccontextmanager
async def watch_window(
    redis_url: str,
    queue: str,
    tenants: Sequence[str],
    start: int,
    end: int,
    run: str,
    db_url: str,
    db_schema: str | None = None,
) -> AsyncIterator[WindowWatch]:
    """A :class:`WindowWatch` of the window queued as ``run``: one database connection
    per tenant (under a lock of its own, not the discovery's) and one to Redis, for the
    watch's life."""
    async with AsyncExitStack() as stack:
        outputs: dict[str, DatabaseOutput] = {}
        for tenant in tenants:
            output = database_output(
                db_url, schema=db_schema, tenant_key=tenant, name=f"enqueue:{run}"
            )
            await stack.enter_async_context(output.lock())
            outputs[tenant] = output
        redis: Redis = Redis.from_url(
            redis_url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT
        )
        stack.push_async_callback(redis.aclose)
        yield WindowWatch(outputs, redis, queue, run, window_note(start, end))
