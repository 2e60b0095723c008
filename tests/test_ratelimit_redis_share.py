"""Processes sharing one Redis budget while that Redis is away (``fallback_local=True``):
each paces at its share of the rate, for the number of processes last seen sharing the
key, and together they stay within the limit; once Redis is back it paces again.

The share's arithmetic is checked without I/O; the rest stops and restarts a
redis-server of the test's own (``tests/_redis_server.py``), never the shared one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
from _ratelimit_util import max_in_any_window
from _redis_server import PrivateRedis, redis_server_executable

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.ratelimit import LimitKey, Pacing, RateLimit, RedisRateLimiter
from feishu_vc_async.ratelimit._share import ShareBucket

KEY = LimitKey("vc/v1/participant_list", "cli_a", "tenant_1")
WORKER = Path(__file__).with_name("_ratelimit_worker.py")
FELL_BACK = "cannot be used"  # the limiter's warning when it turns to the shares
CAME_BACK = "answers again"  # its note when Redis answers again


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    async with PrivateRedis(redis_server_executable(), tmp_path) as server:
        yield server


# --- the share, without I/O ---------------------------------------------------------

PACINGS = [
    Pacing.of(RateLimit(40, 2.0)),
    Pacing.of(RateLimit(100, 60.0)),
    Pacing.of(RateLimit(10, 1.0), margin=0.0),
    Pacing.of(RateLimit(1000, 60.0), burst=1.0),
    Pacing.of(RateLimit(40, 2.0), burst=20.0),
    Pacing.of(RateLimit(7, 3.0), burst=7.0),
    Pacing.of(RateLimit(3, 1.0)),
]


@pytest.mark.parametrize("pacing", PACINGS, ids=str)
def test_shares_add_up_to_at_most_the_whole(pacing: Pacing) -> None:
    whole, b = pacing.rate, pacing.burst
    assert pacing.share(1) is pacing
    for n in [*range(2, 13), 99, 150, 2000]:
        share = pacing.share(n)
        assert share.margin == pacing.margin
        assert 1.0 <= share.burst <= min(b, share.rate.requests), n
        assert share.rate.period >= whole.period
        if n <= whole.requests + 1 - b:  # a share of one request a period or more
            assert share.rate == RateLimit(whole.requests // n, whole.period), n
        # Each sends at most share.requests in any window; n of them, at most the limit
        # (with more processes than that, only the long-run rate can fit, as below).
        if n <= whole.requests:
            assert n * share.rate.requests <= whole.requests, n
        # The steady rate is at most 1/n of the whole's (the switch to the shares needs
        # that), and no further below it than whole requests make it.
        ratio = n * pacing.interval / share.interval
        assert ratio <= 1.0 + 1e-12, n
        if n <= whole.requests:
            assert ratio >= min(1.0, n * (whole.requests // n) / (whole.requests + 1 - b)) - 1e-12


def _gcra_allow(tat: float, pacing: Pacing) -> float:
    return tat - (pacing.burst - 1.0) * pacing.interval


def _simulate(
    pacing: Pacing, n: int, returns: list[float], handover: float, *, spent: bool = True
) -> list[float]:
    """The send times of ``n`` processes that always have work, as the limiter paces them
    (with the shares' real :class:`ShareBucket`): through one GCRA (Redis) until it goes
    away at 10 periods, each on its share from then, and after Redis, restarted empty,
    answers process ``p`` at ``returns[p]``, through both for ``handover`` seconds, then
    through Redis alone, until 30 periods."""
    period = pacing.rate.period
    fault, end = 10 * period, 30 * period
    times: list[float] = []
    tat = 0.0
    while (t := max(_gcra_allow(tat, pacing), 0.0)) < fault:
        times.append(t)
        tat = max(tat, t) + pacing.interval
    tat = 0.0  # restarted empty
    buckets = [ShareBucket(pacing.share(n), 1, fault) for _ in range(n)]
    if not spent:
        for bucket in buckets:
            bucket.tat = fault  # as if the shares had not been used: a burst each
    while True:
        moves: list[tuple[float, int, str]] = []
        for p, bucket in enumerate(buckets):
            local = bucket.wait(0.0)  # when its share next allows a send
            both = max(local, returns[p], _gcra_allow(tat, pacing))
            if local < returns[p]:
                moves.append((local, p, "share"))
            elif both < returns[p] + handover:
                moves.append((both, p, "both"))
            else:
                moves.append((max(returns[p] + handover, _gcra_allow(tat, pacing)), p, "redis"))
        t, p, how = min(moves)
        if t >= end:
            return times
        times.append(t)
        if how != "redis":
            buckets[p].take(t)
        if how != "share":
            tat = max(tat, t) + pacing.interval


def _returns_and_handover(pacing: Pacing, n: int) -> tuple[list[float], float]:
    """The processes find Redis again over a whole reconnect interval (the most it
    takes); the handover is RedisRateLimiter's for that interval."""
    period = pacing.rate.period
    reconnect = 1.5 * period
    returns = [15 * period + reconnect * p / (n - 1) for p in range(n)]
    return returns, reconnect + period * (1 + pacing.margin)


def _window(pacing: Pacing) -> float:
    """A gateway window seen with some jitter; just below the period when there is none."""
    return pacing.rate.period * (1 + pacing.margin / 2) * (1 - 1e-9)


@pytest.mark.parametrize("pacing", PACINGS[:5], ids=str)
@pytest.mark.parametrize("n", [2, 4, 7])
def test_the_switches_to_the_shares_and_back_keep_every_window_within_the_limit(
    pacing: Pacing, n: int
) -> None:
    times = _simulate(pacing, n, *_returns_and_handover(pacing, n))
    assert max_in_any_window(times, _window(pacing)) <= pacing.rate.requests
    # Not starved: the shares together pace close to the whole.
    assert len(times) >= 0.9 * pacing.utilization * pacing.rate.requests * 30


def test_without_the_handover_or_a_spent_start_a_window_overflows() -> None:
    pacing, n = PACINGS[0], 4
    returns, handover = _returns_and_handover(pacing, n)
    limit, window = pacing.rate.requests, _window(pacing)
    # The first process back would take the whole rate while the rest still send at
    # their shares; shares that started with a burst would add it to a spent budget.
    assert max_in_any_window(_simulate(pacing, n, returns, 0.0), window) > limit
    assert max_in_any_window(_simulate(pacing, n, returns, handover, spent=False), window) > limit


# --- counting the processes ---------------------------------------------------------


async def test_each_limiter_learns_how_many_share_a_key(private_redis: PrivateRedis) -> None:
    # A long period (counted at most once a second) and a high rate (no waits).
    limiters = [
        RedisRateLimiter(private_redis.url, RateLimit(1000, 4.0), prefix="t") for _ in range(3)
    ]
    try:
        assert [limiter.sharing(KEY) for limiter in limiters] == [1, 1, 1]
        for limiter in limiters:
            await limiter.acquire(KEY)
        assert [limiter.sharing(KEY) for limiter in limiters] == [1, 2, 3]
        # Counted again once a quarter period has passed, not on every slot.
        await limiters[0].acquire(KEY)
        assert limiters[0].sharing(KEY) == 1
        await asyncio.sleep(1.0)
        await limiters[0].acquire(KEY)
        assert limiters[0].sharing(KEY) == 3
    finally:
        for limiter in limiters:
            await limiter.aclose()


async def test_a_limiter_that_stops_asking_is_no_longer_counted(
    private_redis: PrivateRedis,
) -> None:
    rate = RateLimit(20, 0.4)
    limiters = [RedisRateLimiter(private_redis.url, rate, prefix="t") for _ in range(3)]
    client = aioredis.Redis.from_url(private_redis.url)
    members = limiters[0].processes_key(KEY)
    assert members.startswith("t:ratelimit:{vc/v1/participant_list|cli_a|tenant_1}")
    try:
        for limiter in limiters:
            await limiter.acquire(KEY)
        ttl = await client.pttl(members)
        assert 0 < ttl <= (rate.period * 2 + 1.0) * 1000, ttl
        # Two stop asking: a period (and two waits) later they are no longer counted.
        await asyncio.sleep(rate.period * 1.01 + 2 * limiters[0].pacing.interval + 0.05)
        await limiters[0].acquire(KEY)
        assert limiters[0].sharing(KEY) == 1
        assert await client.zcard(members) == 1
        await limiters[0].aclose()
        await asyncio.sleep(await client.pttl(members) / 1000 + 0.05)  # the set expires
        assert await client.exists(members) == 0
    finally:
        await client.aclose()
        for limiter in limiters:
            await limiter.aclose()


# --- while Redis is away --------------------------------------------------------------


async def _until(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Wait for something the test observes (not for a number of seconds); the timeout
    only keeps a broken run from hanging."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


async def test_limiters_pace_at_their_shares_while_redis_is_away(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Four limiters in one loop, as four processes would be, three callers each."""
    rate, reconnect = RateLimit(40, 1.0), 0.5
    limiters = [
        RedisRateLimiter(
            private_redis.url,
            rate,
            prefix="t",
            fallback_local=True,
            margin=0.05,
            reconnect_interval=reconnect,
        )
        for _ in range(4)
    ]
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def caller(limiter: RedisRateLimiter) -> None:
        while True:
            await limiter.acquire(KEY)
            times.append(loop.time())

    def said(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records)

    try:
        with caplog.at_level(logging.INFO, logger="feishu_vc_async.ratelimit"):
            async with asyncio.TaskGroup() as group:
                callers = [group.create_task(caller(lim)) for lim in limiters for _ in range(3)]
                await _until(lambda: len(times) >= 60, "60 slots were taken through Redis")
                assert [lim.sharing(KEY) for lim in limiters] == [4] * 4
                await private_redis.stop()
                # Each limiter fails at once and once more a reconnect interval later:
                # Redis stays away for longer than the fallback window.
                await _until(lambda: said(FELL_BACK) >= 8, "each limiter retried Redis")
                assert all(lim.using_fallback for lim in limiters)
                fault = len(times)
                await private_redis.start()
                await _until(
                    lambda: said(CAME_BACK) >= 4 and not any(x.using_fallback for x in limiters),
                    "every limiter found Redis again",
                )
                back = len(times)
                # A handover (reconnect + period) and a period of Redis alone after it.
                handover_slots = int((reconnect + 2 * rate.period) * rate.requests)
                await _until(lambda: len(times) >= back + handover_slots, "Redis paced again")
                for task in callers:
                    task.cancel()
                assert [lim.sharing(KEY) for lim in limiters] == [4] * 4
                assert not any(lim.using_fallback for lim in limiters)
    finally:
        for limiter in limiters:
            await limiter.aclose()
    assert max_in_any_window(times, rate.period) <= rate.requests
    assert back - fault > 0  # the shares served while Redis was away


class _Worker:
    """One ``_ratelimit_worker.py`` process, its log lines read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: list[str] = []
        self.output = b""
        assert process.stderr is not None
        self._reading = asyncio.gather(self._read_log(process.stderr), self._read_output())

    @classmethod
    async def start(cls, config: dict[str, object]) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 60)
        assert ready.strip() == b"ready", ready
        return cls(process)

    def said(self, text: str) -> int:
        return sum(text in line for line in self.log)

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")

    async def result(self) -> dict[str, int]:
        await self._reading
        assert await self.process.wait() == 0, "\n".join(self.log)
        result: dict[str, int] = json.loads(self.output.splitlines()[-1])
        return result

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reading

    async def _read_log(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.log.append(line.decode(errors="replace").rstrip())

    async def _read_output(self) -> None:
        assert self.process.stdout is not None
        self.output = await self.process.stdout.read()


@pytest.mark.slow
async def test_four_processes_stay_within_the_budget_while_redis_is_away(
    private_redis: PrivateRedis,
) -> None:
    """Four processes share 40 requests per 2 s through a Redis of the test's own, with
    ``fallback_local=True``; that Redis is killed (losing every key) once they are well
    under way, and started again once every process has failed over twice, i.e. after
    longer than the fallback window. The emulator (in this process) counts the 429s."""
    rate, reconnect, processes = RateLimit(40, 2.0), 1.0, 4
    # Scaled time: the gateway stamps arrivals on a machine other tests load, so the
    # tolerated send-to-gateway jitter is 5 % of the period (100 ms), not the default 1 %.
    margin = 0.05
    async with Emulator(
        meetings=120, seed=5, rate_limit=rate, window="sliding", data=MeetingData(webinars=0)
    ) as emu:
        # Built before the clock starts: building one stalls the emulator's loop.
        want = sum(len(emu.participants(q)) for q in emu.meetings)
        config = {
            "base_url": emu.base_url,
            "app_id": emu.app_id,
            "app_secret": emu.app_secret,
            "redis_url": private_redis.url,
            "prefix": "t",
            "rate": str(rate),
            "margin": margin,
            "tasks": 5,
            "paged": True,
            "fallback_local": True,
            "reconnect_interval": reconnect,
            "log": True,
        }
        workers: list[_Worker] = []
        try:
            for p in range(processes):
                queries = msgspec.json.encode(emu.meetings[p::processes]).decode()
                workers.append(await _Worker.start({**config, "queries": queries}))
            for worker in workers:
                worker.go()

            def answered() -> int:
                return sum(r.path == PARTICIPANT_LIST_PATH for r in emu.requests)

            await _until(lambda: answered() >= 60, "the emulator answered 60 requests")
            await private_redis.stop()
            await _until(
                lambda: all(w.said(FELL_BACK) >= 2 for w in workers),
                "every process found Redis away twice: past its fallback window",
            )
            await private_redis.start()
            await _until(
                lambda: all(w.said(CAME_BACK) for w in workers), "every process found Redis again"
            )
            back = asyncio.get_running_loop().time()
            results = [await w.result() for w in workers]
        finally:
            for worker in workers:
                await worker.kill()
        records = [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
        refused = sum(r.status == 429 for r in records)
        busiest = emu.max_in_window(rate.period)
    assert refused == 0, f"{refused} answered 429 (busiest window: {busiest})"
    assert busiest <= rate.requests
    assert sum(r["participants"] for r in results) == want
    assert sum(r["done"] for r in results) == len(emu.meetings)
    assert [r["rate_limited"] for r in results] == [0] * processes
    # Redis paced again: requests went on past every process's handover.
    assert max(r.time for r in records) > back + reconnect + rate.period * (1 + margin)


async def test_a_redis_restarted_between_two_slots_is_no_fault(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """redis-py reconnects a pooled connection the old server closed. The handover's
    reasoning needs that: no process turns to its share once Redis is back."""
    limiter = RedisRateLimiter(private_redis.url, RateLimit(10, 1.0), fallback_local=True)
    try:
        with caplog.at_level(logging.WARNING, logger="feishu_vc_async.ratelimit"):
            await limiter.acquire(KEY)
            await private_redis.stop()
            await private_redis.start()
            await limiter.acquire(KEY)  # on a connection opened before the restart
            await limiter.report_rate_limited(KEY, 0.01)
        assert not limiter.using_fallback
        assert not [r for r in caplog.records if FELL_BACK in r.getMessage()]
    finally:
        await limiter.aclose()
