"""An event loop on virtual time, shared by every test that waits on the loop's clock.

The loop's clock only moves when the loop would sleep: a wait for a timer jumps the
clock to it at once. So the real limiter, token lifetimes, progress ticks and retry
backoffs run exactly as they would, hundreds of periods take milliseconds, and no
scheduling noise of a loaded machine blurs a bound. The library reads the loop's clock
by default (``feishu_vc_async._clock``), so every timer of it moves together.

Use it with ``@pytest.mark.virtual_time`` on an async test (the ``anyio_backend``
fixture in ``conftest.py`` then runs the test on a :class:`VirtualLoop`), or call
:func:`run_virtual` from a sync test (hypothesis). Not for tests that wait on real
sockets: the loop never blocks, so it would jump past an answer still in flight.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["SteerableLoop", "VirtualLoop", "run_virtual"]

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    """Never blocks: a wait for ``timeout`` seconds moves the virtual clock instead.

    Every turn of the loop costs a microsecond, as a real one does: otherwise a timer
    due "now + 1e-17" (float rounding in aiolimiter) would never come due.
    """

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self._clock[0] += max(timeout or 0.0, 1e-6)
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual_now = [0.0]
        super().__init__(_VirtualSelector(self._virtual_now))

    def time(self) -> float:
        return self._virtual_now[0]


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on a fresh virtual loop."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


class SteerableLoop(asyncio.SelectorEventLoop):
    """A real event loop (it waits on sockets as usual) whose clock a test moves forward.

    ``advance(seconds)`` makes every timer due within them fire on the loop's next turn:
    a 30 s timeout expires the moment the test says so, with nothing racing it, while
    the answers the test does want still have the whole 30 s. Use it with
    ``@pytest.mark.steerable_clock``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._offset = 0.0

    def time(self) -> float:
        return super().time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
