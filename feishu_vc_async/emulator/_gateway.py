"""The rate-limit gateway: per-bucket request counting in a sliding or a fixed window.

``sliding`` keeps a log of admitted requests: a request is admitted while fewer than
``limit`` were admitted in the ``period`` before it, so no span of ``period`` seconds,
anywhere, holds more than ``limit``. ``fixed`` counts per calendar window aligned to
multiples of ``period`` since the epoch (``:00`` of each minute for 60 s), so up to
``2 * limit`` can pass around a boundary. Refused requests are not counted: a client
that keeps knocking is refused until a slot frees, but does not push the slot further.

:class:`Gateways` is the emulator's set of them: one per VC API (or none, unlimited), and
the windows during which ``force_rate_limit`` refuses everything regardless.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping
from typing import Literal

from .._constants import RATELIMIT_LIMIT_HEADER, RATELIMIT_RESET_HEADER
from ..ratelimit._protocol import RateLimit

__all__ = ["Gateway", "Gateways", "WindowMode", "format_reset"]

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


class Gateways:
    """The gateway of each API path (``None``: unlimited) and the windows forced on them."""

    def __init__(self, rates: Mapping[str, RateLimit | None], window: WindowMode) -> None:
        self._rates = dict(rates)
        self._window = window
        self._gateways = {
            path: Gateway(rate, window) if rate is not None else None
            for path, rate in self._rates.items()
        }
        # Per path: (monotonic end of the forced window, its length).
        self._forced: dict[str, tuple[float, float]] = {}

    def force(self, seconds: float, path: str | None, now: float) -> None:
        """Refuse every request to ``path`` (None: every path) for ``seconds`` from ``now``."""
        known = list(self._rates)
        if path is not None and path not in known:
            raise ValueError(f"path={path!r}: not a VC data API of the emulator")
        for p in known if path is None else [path]:
            until, _ = self._forced.get(p, (0.0, 0.0))
            self._forced[p] = (max(until, now + seconds), seconds)

    def refusal(
        self, path: str, bucket: Hashable, mono: float, wall: float
    ) -> dict[str, str] | None:
        """``None`` if ``path``'s gateway admits (and counts) the request, else the 429's
        headers. A forced window refuses first."""
        until, span = self._forced.get(path, (0.0, 0.0))
        reset = until - mono if until > mono else None
        gateway = self._gateways[path]
        if reset is None and gateway is not None:
            reset = gateway.admit(bucket, wall if self._window == "fixed" else mono)
        if reset is None:
            return None
        # A forced window without a gateway is formatted at the forced span's scale.
        rate = self._rates[path] or RateLimit(period=span)
        return {
            RATELIMIT_LIMIT_HEADER: str(rate.requests),
            RATELIMIT_RESET_HEADER: format_reset(reset, rate.period),
        }
