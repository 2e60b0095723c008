"""Shared checks for the rate-limit tests: the window invariant over every window."""

from __future__ import annotations

from collections.abc import Sequence


def max_in_any_window(times: Sequence[float], period: float) -> int:
    """The most events any closed span of ``period`` seconds holds (sliding, so it covers
    every fixed window too, whatever its origin)."""
    ts = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(ts):
        while ts[j] < t - period:
            j += 1
        best = max(best, i - j + 1)
    return best


def utilization(times: Sequence[float], requests: int, period: float) -> float:
    """Events per second over the run, as a share of ``requests / period``."""
    ts = sorted(times)
    if len(ts) < 2:
        return 0.0
    return (len(ts) - 1) / (ts[-1] - ts[0]) / (requests / period)
