"""Shared checks for the rate-limit tests: the window invariant over every window, and
the order a limiter serves its waiters in."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from feishu_vc_async.ratelimit import LimitKey, RateLimiter


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


async def serve_order(limiter: RateLimiter, key: LimitKey) -> list[str]:
    """Six new reads queue behind a first caller, then two continuing reads arrive: the
    order the eight are served in."""
    served: list[str] = []
    await limiter.acquire(key)  # the bucket is drained: everyone below waits

    async def caller(name: str, continuing: bool) -> None:
        await limiter.acquire(key, continuing=continuing)
        served.append(name)

    async with asyncio.TaskGroup() as tg:
        for i in range(6):
            tg.create_task(caller(f"new{i}", False))
        await asyncio.sleep(0)
        tg.create_task(caller("cont0", True))
        tg.create_task(caller("cont1", True))
    return served
