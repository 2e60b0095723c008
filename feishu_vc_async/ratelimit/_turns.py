"""Whose turn it is to wait for a key's next slot: reads in progress first.

A fan-out pages through many meetings at once, and the pages of one meeting are
sequential. When a meeting's next page waits for a slot behind the first pages of
meetings started after it, every page of it waits that long, and a long meeting's
chain of pages stretches past the rest of the run: the run ends with that meeting
paging alone. So a request that continues a paged read (it carries a page token) is
handed the next slot before any new read; among equals, arrival order.

Only the caller whose turn it is waits on the bucket (aiolimiter's own queue is
first come, first served); the others wait here, in two queues.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Turns"]


class Turns:
    """A lock whose waiters are served continuing reads first, then in arrival order."""

    __slots__ = ("_busy", "_continuing", "_new")

    def __init__(self) -> None:
        self._busy = False
        self._continuing: deque[asyncio.Future[None]] = deque()
        self._new: deque[asyncio.Future[None]] = deque()

    @property
    def busy(self) -> bool:
        """Whether a turn is under way (so there may be waiters to serve)."""
        return self._busy

    async def take(self, continuing: bool) -> None:
        """Wait for the turn; a caller cancelled while waiting takes none."""
        if not self._busy:
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._continuing if continuing else self._new
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed the turn as it was cancelled: pass it on
            elif future in queue:  # release() may have dropped it already
                queue.remove(future)
            raise

    def release(self) -> None:
        """End the current turn: the next waiter's begins."""
        for queue in (self._continuing, self._new):
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._busy = False
