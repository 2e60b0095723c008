"""The Redis limiter: one budget across processes, server-clock pacing, shared pauses.

Needs a Redis (the ``redis_url`` fixture skips visibly without one; CI requires it),
except for the unreachable-Redis tests, which point at a closed port.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import redis
import redis.asyncio as aioredis
from _ratelimit_util import max_in_any_window, utilization

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator
from feishu_vc_async.errors import RateLimiterError
from feishu_vc_async.ratelimit import (
    LimitKey,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
    token_identity,
)
from tests._gateway import JITTER, client_limit

KEY = LimitKey("vc/v1/participant_list", "cli_a", "tenant_1")
UNREACHABLE = "redis://:s3cret-pass@127.0.0.1:1/0"
WORKER = Path(__file__).with_name("_ratelimit_worker.py")


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test alone; every key under it is deleted afterwards."""
    name = f"feishu_vc_test_{uuid.uuid4().hex[:12]}"
    yield name
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{name}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _take(limiter: RateLimiter, total: int, tasks: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            await limiter.acquire(KEY)
            times.append(loop.time())

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return times


def test_key_names_are_prefixed_and_hold_no_secret() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", RateLimit(), prefix="myapp")
    token = "t-very-secret-token"
    state, pause = limiter.redis_keys(LimitKey("vc/v1/participant_list", token_identity(token)))
    assert state.startswith("myapp:ratelimit:{vc/v1/participant_list|token:")
    assert pause == state + ":pause"
    assert token not in state
    with pytest.raises(ValueError, match="prefix"):
        RedisRateLimiter("redis://127.0.0.1:1/0", RateLimit(), prefix="a{b}")
    with pytest.raises(TypeError, match="asyncio"):
        RedisRateLimiter(redis.Redis(), RateLimit())  # a blocking client: refused up front


async def test_unreachable_redis_raises_rate_limiter_error() -> None:
    limiter = RedisRateLimiter(UNREACHABLE, RateLimit(10, 1.0))
    assert "s3cret" not in repr(limiter)
    try:
        with pytest.raises(RateLimiterError, match=r"127\.0\.0\.1:1") as info:
            await limiter.acquire(KEY)
        assert "s3cret" not in str(info.value)
        assert "fallback_local=True" in str(info.value)
        with pytest.raises(RateLimiterError):
            await limiter.report_rate_limited(KEY, 1.0)
    finally:
        await limiter.aclose()


async def test_unreachable_redis_falls_back_with_a_logged_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rate = RateLimit(10, 1.0)
    limiter = RedisRateLimiter(UNREACHABLE, rate, fallback_local=True)
    try:
        with caplog.at_level(logging.WARNING, logger="feishu_vc_async"):
            times = await _take(limiter, 12, 4)
        assert limiter.using_fallback
        warned = [r for r in caplog.records if "cannot be used" in r.getMessage()]
        assert len(warned) == 1  # once per switch, not per call
        assert "s3cret" not in warned[0].getMessage()
        # The fallback still paces: 12 slots of 10/s with the usual window guarantee (in
        # real time, over windows shortened by how late a busy machine may stamp a grant).
        assert max_in_any_window(times, rate.period - JITTER) <= rate.requests
        assert max(times) - min(times) >= 1.0
        await limiter.report_rate_limited(KEY, 0.3)  # goes to the fallback, no error
    finally:
        await limiter.aclose()


async def test_keys_have_ttls_and_expire(redis_url: str, prefix: str) -> None:
    rate = RateLimit(10, 0.5)
    limiter = RedisRateLimiter(redis_url, rate, prefix=prefix)
    client = aioredis.Redis.from_url(redis_url)
    try:
        await limiter.acquire(KEY)
        await limiter.report_rate_limited(KEY, 0.2)
        state, pause = limiter.redis_keys(KEY)
        for name in (state, pause):
            ttl = await client.pttl(name)
            assert 0 < ttl <= 2000, (name, ttl)
        # Redis drops them once the TTLs run out (polled; the deadline only ends a hang).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        while await client.exists(state, pause):
            assert loop.time() < deadline, "the keys outlived their TTLs"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
        await limiter.aclose()


async def test_caller_owned_client_is_not_closed(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, RateLimit(10, 1.0), prefix=prefix)
    await limiter.acquire(KEY)
    await limiter.aclose()
    assert await client.ping()
    await client.aclose()
    with pytest.raises(RateLimiterError, match="closed"):
        await limiter.acquire(KEY)


@pytest.mark.slow
async def test_four_processes_share_one_budget_with_zero_429s(redis_url: str, prefix: str) -> None:
    rate = RateLimit(100, 1.5)  # scaled from 100 per minute
    paced = client_limit(rate)  # a little under the gateway: tests/_gateway.py
    processes, per_process, tasks = 4, 100, 20
    async with Emulator(meetings=20, seed=3, rate_limit=rate, window="sliding") as emu:
        # The emulator builds a meeting's rows on its first request, blocking its loop for
        # up to ~0.1 s: every arrival queued behind that is stamped late, which would be
        # the gateway's own skew, not the limiter's. Build them all before the clock starts.
        for query in emu.meetings:
            emu.participants(query)
        config = {
            "base_url": emu.base_url,
            "app_id": emu.app_id,
            "app_secret": emu.app_secret,
            "redis_url": redis_url,
            "prefix": prefix,
            "rate": str(paced),
            "margin": 0.01,
            "total": per_process,
            "tasks": tasks,
            "queries": msgspec.json.encode(emu.meetings).decode(),
        }
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                json.dumps(config),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(processes)
        ]
        outputs: list[bytes] = []
        try:
            for proc in procs:
                assert proc.stdout is not None
                ready = await asyncio.wait_for(proc.stdout.readline(), 60)
                assert ready.strip() == b"ready"
            # All four start together, so the run measures their combined pace.
            for out, _ in await asyncio.gather(*(p.communicate(b"go\n") for p in procs)):
                outputs.append(out)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        assert [p.returncode for p in procs] == [0] * processes
        results = [json.loads(out.splitlines()[-1]) for out in outputs]
        assert [r["done"] for r in results] == [per_process] * processes
        assert [r["rate_limited"] for r in results] == [0] * processes
        records = [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
    assert len(records) == processes * per_process
    assert [r for r in records if r.status == 429] == []
    times = [r.time for r in records]
    assert max_in_any_window(times, rate.period) <= rate.requests
    assert utilization(times, paced.requests, paced.period) >= 0.85  # as above
