"""Where the library reads time: a ``Clock`` is any callable returning seconds.

Everything that measures time (token lifetimes, request rates, latencies, the fan-out's
tuner and counters) takes a ``clock`` and defaults to :func:`loop_time`, the running
event loop's clock. asyncio's loop reads ``time.monotonic`` itself, so the default costs
nothing in production, while a test that runs on a virtual event loop (whose clock only
moves when the loop would sleep) controls every timer of the library at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Clock", "loop_time", "wall_time"]

Clock = Callable[[], float]


def loop_time() -> float:
    """The running loop's time; ``time.monotonic()`` outside a loop (same base in asyncio)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def wall_time() -> float:
    """Unix seconds: for times other processes and hosts read too (a stored session's
    expiry), which a monotonic clock cannot give."""
    return time.time()
