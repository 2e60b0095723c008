"""Whose turn it is to wait for a key's next slot: reads in progress first.

A fan-out pages through many meetings at once, and the pages of one meeting are
sequential. When a meeting's next page waits for a slot behind the first pages of
meetings started after it, every page of it waits that long, and a long meeting's
chain of pages stretches past the rest of the run: the run ends with that meeting
paging alone. So a request that continues a paged read (it carries a page token) is
handed the next slot before any new read; among equals, arrival order. Not forever: a
new read waiting behind a run of continuing ones gets every fifth slot, so a one-off
call sharing the budget with a long export waits a few slots, not the export's end.

Only the caller whose turn it is waits on the bucket (aiolimiter's own queue is
first come, first served); the others wait here, in two queues.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Turns"]

# Continuing reads served in a row before a waiting new read gets its turn.
_CONTINUING_RUN = 4


class Turns:
    """A lock whose waiters are served continuing reads first (four in a row at most while
    a new read waits), each kind in arrival order."""

    __slots__ = ("_busy", "_continuing", "_new", "_run")

    def __init__(self) -> None:
        self._busy = False
        self._run = 0  # continuing reads served in a row while a new one waited
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
        except BaseException:  # cancelled, or interrupted: the turn must not be lost
            if future.done() and not future.cancelled():
                self.release()  # handed the turn as it was cancelled: pass it on
            elif future in queue:  # release() may have dropped it already
                queue.remove(future)
            raise

    def release(self) -> None:
        """End the current turn: the next waiter's begins."""
        if self._run >= _CONTINUING_RUN and self._hand_on(self._new):
            self._run = 0
            return
        if self._hand_on(self._continuing):
            self._run = self._run + 1 if self._new else 0
            return
        self._run = 0
        if not self._hand_on(self._new):
            self._busy = False

    @staticmethod
    def _hand_on(queue: deque[asyncio.Future[None]]) -> bool:
        """Give the turn to the first live waiter of ``queue``; False if there is none."""
        while queue:
            future = queue.popleft()
            if not future.done():
                future.set_result(None)
                return True
        return False
