"""The rate-limit gateway: per-bucket request counting in a sliding or a fixed window.

``sliding`` keeps a log of admitted requests: a request is admitted while fewer than
``limit`` were admitted in the ``period`` before it, so no span of ``period`` seconds,
anywhere, holds more than ``limit``. ``fixed`` counts per calendar window aligned to
multiples of ``period`` since the epoch (``:00`` of each minute for 60 s), so up to
``2 * limit`` can pass around a boundary. Refused requests are not counted: a client
that keeps knocking is refused until a slot frees, but does not push the slot further.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from typing import Literal

from ..ratelimit._protocol import RateLimit

__all__ = ["Gateway", "WindowMode", "format_reset"]

WindowMode = Literal["sliding", "fixed"]


def format_reset(seconds: float, period: float) -> str:
    """The ``x-ogw-ratelimit-reset`` value.

    At the real 60 s period it is whole seconds, rounded up, at least 1, as the platform
    sends. With a scaled period (< 60 s) whole seconds would be useless, so the value is
    a decimal string with millisecond precision such as ``"0.350"`` (at least 0.001).
    """
    if period >= 60:
        return str(max(1, math.ceil(seconds)))
    return f"{max(seconds, 0.001):.3f}"


class Gateway:
    """Admits or refuses requests per bucket key; time is passed in by the caller."""

    def __init__(self, rate: RateLimit, mode: WindowMode = "sliding") -> None:
        if mode not in ("sliding", "fixed"):
            raise ValueError(f"window={mode!r}: must be 'sliding' or 'fixed'")
        self.rate = rate
        self.mode: WindowMode = mode
        self._logs: dict[Hashable, deque[float]] = {}
        self._windows: dict[Hashable, tuple[int, int]] = {}

    def admit(self, key: Hashable, now: float) -> float | None:
        """``None`` if admitted (and counted), else the seconds until a slot frees (> 0).

        ``now`` is monotonic time for ``sliding`` and wall time for ``fixed``.
        """
        limit, period = self.rate.requests, self.rate.period
        if self.mode == "fixed":
            index = math.floor(now / period)
            current, used = self._windows.get(key, (index, 0))
            if current != index:
                used = 0
            if used >= limit:
                return max((index + 1) * period - now, 1e-6)
            self._windows[key] = (index, used + 1)
            return None
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = deque()
        horizon = now - period
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= limit:
            return max(log[0] - horizon, 1e-6)
        log.append(now)
        return None
