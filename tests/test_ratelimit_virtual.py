"""The in-process limiter under virtual time: the window invariant, exactly.

The real-time tests show the limiter against the emulator on a loaded machine; these
run the real ``LocalRateLimiter`` (and aiolimiter inside it) on an event loop whose
clock only moves when the loop would sleep, so hundreds of periods take milliseconds
and no scheduling noise blurs the bound. Hypothesis picks the limits, the burst, the
margin, the callers' think times, cancellations and a 429 pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TypeVar

from _ratelimit_util import max_in_any_window
from _virtual_time import run_virtual
from hypothesis import given, settings
from hypothesis import strategies as st

from feishu_vc_async.ratelimit import LimitKey, LocalRateLimiter, RateLimit

KEY = LimitKey("vc/v1/participant_list", "cli_virtual")
T = TypeVar("T")


@settings(max_examples=60, deadline=None)
@given(
    requests=st.integers(min_value=1, max_value=120),
    period=st.sampled_from([0.5, 3.0, 60.0]),
    burst_extra=st.floats(min_value=0.0, max_value=1.0),
    margin=st.sampled_from([0.0, 0.01, 0.05]),
    callers=st.integers(min_value=1, max_value=30),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_no_window_ever_holds_more_than_the_limit(
    requests: int,
    period: float,
    burst_extra: float,
    margin: float,
    callers: int,
    seed: int,
) -> None:
    rate = RateLimit(requests, period)
    burst = 1.0 + burst_extra * (requests - 1)
    rng = random.Random(seed)
    total = 3 * requests + 20

    async def main() -> tuple[list[float], float]:
        limiter = LocalRateLimiter(rate, burst=burst, margin=margin)
        loop = asyncio.get_running_loop()
        times: list[float] = []
        remaining = iter(range(total))

        async def caller() -> None:
            for _ in remaining:
                # Think times from none (saturating) to a few intervals (idle refills).
                if rng.random() < 0.3:
                    await asyncio.sleep(rng.uniform(0, 4 * limiter.pacing.interval))
                await limiter.acquire(KEY)
                times.append(loop.time())

        async def take() -> None:
            await limiter.acquire(KEY)
            times.append(loop.time())  # no await in between: the moment of the grant

        async def canceller() -> None:
            # Callers cancelled while they wait must neither take nor free a slot.
            for _ in range(5):
                task = asyncio.create_task(take())
                await asyncio.sleep(rng.uniform(0, 2 * limiter.pacing.interval))
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        await asyncio.gather(*(caller() for _ in range(callers)), canceller())
        await limiter.aclose()
        return times, limiter.pacing.interval

    times, _ = run_virtual(main)
    assert len(times) >= total
    # Exactly the bound of _pacing: N+1 slots never fit in period * (1 + margin).
    span = period * (1 + margin) * (1 - 1e-9)
    assert max_in_any_window(times, span) <= requests
    assert max_in_any_window(times, period) <= requests


@settings(max_examples=30, deadline=None)
@given(
    requests=st.integers(min_value=5, max_value=120),
    period=st.sampled_from([1.0, 60.0]),
)
def test_saturated_pacing_reaches_its_nominal_utilization(requests: int, period: float) -> None:
    rate = RateLimit(requests, period)
    periods = 10

    async def main() -> tuple[list[float], float]:
        limiter = LocalRateLimiter(rate)
        loop = asyncio.get_running_loop()
        times: list[float] = []
        end = loop.time() + periods * period

        async def caller() -> None:
            while loop.time() < end:
                await limiter.acquire(KEY)
                times.append(loop.time())

        async def take() -> None:
            await limiter.acquire(KEY)
            times.append(loop.time())

        async def canceller() -> None:
            # Waiters cancelled all along must not eat into the callers' slots.
            while loop.time() < end:
                task = asyncio.create_task(take())
                await asyncio.sleep(limiter.pacing.interval / 3)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        await asyncio.gather(*(caller() for _ in range(20)), canceller())
        await limiter.aclose()
        return times, limiter.pacing.utilization

    times, nominal = run_virtual(main)
    assert max_in_any_window(times, period) <= requests
    # Callers still queued at the end get their slots later; count the run's span only.
    used = sum(1 for t in times if t < periods * period) / (periods * requests)
    # Steady state plus the one-off burst; no more than the limit allows.
    assert nominal - 0.01 <= used <= nominal + 1.0 / periods
    if requests >= 100:
        assert nominal >= 0.98


@settings(max_examples=30, deadline=None)
@given(
    reports=st.lists(
        st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 3.0) | st.none()), min_size=1, max_size=4
    ),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_pauses_hold_every_caller_and_merge(
    reports: list[tuple[float, float | None]], seed: int
) -> None:
    rate = RateLimit(20, 1.0)
    rng = random.Random(seed)

    async def main() -> tuple[list[float], list[tuple[float, float]]]:
        limiter = LocalRateLimiter(rate)
        loop = asyncio.get_running_loop()
        times: list[float] = []
        pauses: list[tuple[float, float]] = []
        end = loop.time() + 6.0

        async def caller() -> None:
            while loop.time() < end:
                await limiter.acquire(KEY)
                times.append(loop.time())
                await asyncio.sleep(rng.uniform(0, 0.05))

        async def reporter() -> None:
            for at, reset in sorted(reports, key=lambda r: r[0]):
                await asyncio.sleep(max(0.0, at - (loop.time() - start)))
                await limiter.report_rate_limited(KEY, reset)
                now = loop.time()
                pauses.append((now, now + limiter.paused_for(KEY)))

        start = loop.time()
        await asyncio.gather(*(caller() for _ in range(10)), reporter())
        await limiter.aclose()
        return times, pauses

    times, pauses = run_virtual(main)
    for began, ends in pauses:
        assert not [t for t in times if began < t < ends]
    # Merged, not stacked: the pause never ends later than the latest single report asks.
    for (began, ends), (_, reset) in zip(pauses, sorted(reports, key=lambda r: r[0]), strict=True):
        asked = 1.0 if reset is None else reset
        assert ends <= max(began + asked, max(e for _, e in pauses)) + 1e-9
    assert max_in_any_window(times, rate.period) <= rate.requests
