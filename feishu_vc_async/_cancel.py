"""Cancellation helpers: a cancellation that a library lost, raised again; work cut
short when an event is set.

On Python 3.11, ``asyncio.wait_for`` drops a cancellation that arrives in the loop
iteration where its inner future completes: it returns the result as if the task had
never been cancelled (gh-86296, fixed in 3.12). redis-py sends every command through
``wait_for``, so a task cancelled while its Redis command is in flight can carry on:
a task group then waits for it forever (a rate limiter's caller that keeps taking
slots, a lock's renewer that never ends). The task still counts the request
(``Task.cancelling()``), which is how :func:`cancellable` tells.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["cancellable", "unless_set"]

T = TypeVar("T")


async def cancellable(call: Awaitable[T]) -> T:
    """Await ``call``; if the task was asked to cancel meanwhile and ``call`` returned
    anyway, raise the ``CancelledError`` it swallowed."""
    task = asyncio.current_task()
    requested = 0 if task is None else task.cancelling()
    result = await call
    if task is not None and task.cancelling() > requested:
        raise asyncio.CancelledError
    return result


async def unless_set(work: Awaitable[T], event: asyncio.Event) -> asyncio.Future[T]:
    """Await ``work`` unless ``event`` is set first, which cancels it. Returns its future,
    done: ``cancelled()`` when cut short, else its result (or error) is there."""
    doing = asyncio.ensure_future(work)
    waiting = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([doing, waiting], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        if not doing.done():
            doing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await doing
    return doing
