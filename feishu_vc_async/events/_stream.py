"""Ended meetings as an async iterator, for code that does its own thing with them.

::

    ended = EndedMeetings()
    receiver = WebhookReceiver(..., on_ended=ended.put)      # and/or
    listener = LongConnection(..., on_ended=ended.put)
    async for meeting in ended:                               # each meeting once
        rows = [p async for p in client.participants(meeting.query)]

Each meeting comes out once, however many events told it (a re-push keeps its
``event_id``; two events of one meeting share its (tenant, number, start)), among the
last ``remember`` meetings. ``put`` waits while ``buffer`` meetings are waiting to be
read (an event is then acknowledged only once there is room: the platform keeps the
rest), so a slow reader holds the sources back instead of growing memory. Unlike the
sync's inbox (``feishu_vc_async.sync``), nothing here survives the process: a meeting
put and not yet read is lost with it; a reconcile by meeting_list heals that.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from .._validate import positive_int
from ._ended import MeetingEnded

__all__ = ["EndedMeetings"]


class EndedMeetings:
    """An async iterator of :class:`MeetingEnded`, fed by ``put`` (the ``on_ended`` of
    webhook receivers and long connections); ``close()`` ends the iteration once what
    was put has been read."""

    def __init__(self, *, buffer: int = 1000, remember: int = 100_000) -> None:
        self._queue: asyncio.Queue[MeetingEnded] = asyncio.Queue(positive_int("buffer", buffer))
        self._remember = positive_int("remember", remember)
        self._seen: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._closed = asyncio.Event()
        # A meeting taken off the queue by a read that was cancelled: the next read's.
        self._kept: list[MeetingEnded] = []

    async def put(self, ended: MeetingEnded) -> None:
        """Hand over ``ended`` (a meeting told before is dropped); waits for room."""
        if self._closed.is_set():
            raise RuntimeError("EndedMeetings is closed")
        key = ended.key
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        self._seen[key] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        await self._queue.put(ended)

    def close(self) -> None:
        """No more meetings: the iteration ends after those already put."""
        self._closed.set()

    def __aiter__(self) -> EndedMeetings:
        return self

    async def __anext__(self) -> MeetingEnded:
        if self._kept:
            return self._kept.pop()
        if not self._queue.empty():
            return self._queue.get_nowait()
        if self._closed.is_set():
            raise StopAsyncIteration
        got = asyncio.ensure_future(self._queue.get())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({got, closed}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            if got.done() and not got.cancelled():
                self._kept.append(got.result())
            raise
        finally:
            closed.cancel()
            if not got.done():
                got.cancel()
        if got.done() and not got.cancelled():
            return got.result()
        raise StopAsyncIteration
