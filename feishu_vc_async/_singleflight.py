"""One fetch at a time, and its outcome for everyone who waited on it.

Token providers refill a cache that many requests read at once. When the cache is cold
or stale, exactly one caller fetches; the callers that queued behind it get *that*
fetch's outcome, success or failure, instead of each fetching again. So fifty requests
that find an expired token cause one token request, and an unreachable token endpoint
fails them all after one bounded retry loop, not fifty. A fetch that was cancelled
shares nothing: the next caller in line fetches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

__all__ = ["LoopLock", "SingleFlight"]

T = TypeVar("T")


class LoopLock:
    """An ``asyncio.Lock`` per event loop, so its owner outlives a loop (tests, reruns)."""

    __slots__ = ("_lock", "_loop")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._lock = asyncio.Lock()
        return self._lock


class SingleFlight(Generic[T]):
    """Runs ``fetch`` for the first caller; callers queued behind it share its outcome."""

    __slots__ = ("_error", "_finished", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = LoopLock()
        self._finished = 0  # fetches that ended with a value or an error
        self._value: T | None = None
        self._error: Exception | None = None

    async def run(self, fetch: Callable[[], Awaitable[T]]) -> T:
        seen = self._finished
        async with self._lock.get():
            if self._finished != seen:
                if self._error is not None:
                    raise self._error
                return cast(T, self._value)
            try:
                value = await fetch()
            except Exception as exc:
                self._value, self._error = None, exc
                self._finished += 1
                raise
            self._value, self._error = value, None
            self._finished += 1
            return value
