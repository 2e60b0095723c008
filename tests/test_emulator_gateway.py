"""The emulator's rate-limit gateway: sliding and fixed windows, 429 shape, buckets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from feishu_vc_async._constants import (
    LOGID_HEADER,
    PARTICIPANT_LIST_PATH,
    RATELIMIT_LIMIT_HEADER,
    RATELIMIT_RESET_HEADER,
)
from feishu_vc_async.emulator import Clocks, Emulator
from feishu_vc_async.ratelimit import RateLimit


class FakeClock:
    """A hand-driven clock: tests move time instead of waiting for it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def _get(
    session: aiohttp.ClientSession, emu: Emulator, token: str | None = None
) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {token or emu.tenant_token()}"}
    params = emu.meetings[0].to_params()
    async with session.get(
        emu.base_url + PARTICIPANT_LIST_PATH, params=params, headers=headers
    ) as r:
        return r.status, await r.json(), r.headers


async def _burst(session: aiohttp.ClientSession, emu: Emulator, n: int) -> list[int]:
    token = emu.tenant_token()
    results = await asyncio.gather(*(_get(session, emu, token) for _ in range(n)))
    return [status for status, _, _ in results]


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_sliding_refuses_101st_in_any_span_and_accepts_as_the_window_moves(
    session: Any,
) -> None:
    # 100 per 2 s (the same logic as 100 per 60 s, scaled) on a clock the test moves: the
    # gateway reads the emulator's monotonic clock, so no second is waited out.
    mono = FakeClock(1000.0)
    async with Emulator(
        meetings=3, seed=1, rate_limit=RateLimit(100, 2.0), clocks=Clocks(monotonic=mono)
    ) as emu:
        first = await _burst(session, emu, 60)
        mono.now += 1.0
        second = await _burst(session, emu, 40)
        assert first + second == [200] * 100
        status, _, headers = await _get(session, emu)
        assert status == 429
        # The first burst's slots free one second from now (the second burst's later).
        assert float(headers[RATELIMIT_RESET_HEADER]) == pytest.approx(1.0, abs=0.001)
        mono.now += 1.0 + 0.001  # the whole first burst has left the window
        statuses = await _burst(session, emu, 61)
        # Sixty slots freed with the first burst; the 61st still meets the second burst.
        assert sorted(statuses) == [200] * 60 + [429]
        assert emu.max_in_window(2.0, admitted_only=True) <= 100
        assert emu.max_in_window(2.0) > 100  # the refused ones were sent all the same


async def test_429_headers_and_body_as_documented(session: Any) -> None:
    mono = FakeClock(1000.0)
    async with Emulator(
        meetings=3, seed=1, rate_limit=RateLimit(2, 60.0), clocks=Clocks(monotonic=mono)
    ) as emu:
        assert [(await _get(session, emu))[0] for _ in range(2)] == [200, 200]
        mono.now += 10.4
        status, body, headers = await _get(session, emu)
        assert status == 429
        assert body["code"] == 99991400
        assert body["msg"] == "request trigger frequency limit"
        assert body["error"]["log_id"] == headers[LOGID_HEADER]
        assert headers[RATELIMIT_LIMIT_HEADER] == "2"
        assert headers[RATELIMIT_RESET_HEADER] == "50"  # whole seconds at the real period
        mono.now += 49.2
        assert (await _get(session, emu))[2][RATELIMIT_RESET_HEADER] == "1"  # ceil, >= 1
        mono.now += 0.45
        assert (await _get(session, emu))[0] == 200
        record = emu.requests[2]
        assert (record.status, record.code) == (429, 99991400)


async def test_refused_requests_do_not_count(session: Any) -> None:
    mono = FakeClock(0.0)
    async with Emulator(
        meetings=3, seed=1, rate_limit=RateLimit(2, 10.0), clocks=Clocks(monotonic=mono)
    ) as emu:
        assert [(await _get(session, emu))[0] for _ in range(2)] == [200, 200]
        mono.now = 5.0
        assert [(await _get(session, emu))[0] for _ in range(3)] == [429] * 3
        mono.now = 10.001
        assert [(await _get(session, emu))[0] for _ in range(3)] == [200, 200, 429]
        # The scaled reset names the time until the oldest admitted slot frees.
        assert (await _get(session, emu))[2][RATELIMIT_RESET_HEADER] == "10.000"


async def test_fixed_window_resets_at_calendar_boundaries(session: Any) -> None:
    period = 3.0
    wall = FakeClock(time.time() // period * period + 0.9 * period)
    async with Emulator(
        meetings=3,
        seed=1,
        rate_limit=RateLimit(5, period),
        window="fixed",
        clocks=Clocks(wall=wall),
    ) as emu:
        assert await _burst(session, emu, 5) == [200] * 5
        status, _, headers = await _get(session, emu)
        assert status == 429
        assert float(headers[RATELIMIT_RESET_HEADER]) == pytest.approx(0.1 * period, abs=0.002)
        wall.now += 0.1 * period + 0.001  # the next calendar window: a fresh budget at once
        assert await _burst(session, emu, 5) == [200] * 5
        assert (await _get(session, emu))[0] == 429
        # Unlike sliding, fixed lets 2x the limit through around a boundary.
        assert emu.max_in_window(period, admitted_only=True) == 10


async def test_buckets_are_per_app_and_user_tokens_charge_their_app(session: Any) -> None:
    mono = FakeClock(0.0)
    async with Emulator(
        meetings=3, seed=1, rate_limit=RateLimit(3, 60.0), clocks=Clocks(monotonic=mono)
    ) as emu:
        user_token = emu.add_user_token(expires_in=100.0)
        statuses = [(await _get(session, emu))[0] for _ in range(2)]
        statuses.append((await _get(session, emu, user_token))[0])
        assert statuses == [200, 200, 200]
        assert (await _get(session, emu, user_token))[0] == 429
        other, _ = emu.add_app()
        assert (await _get(session, emu, emu.tenant_token(other)))[0] == 200


async def test_no_gateway_and_forced_windows(session: Any) -> None:
    mono = FakeClock(0.0)
    async with Emulator(meetings=3, seed=1, rate_limit=None, clocks=Clocks(monotonic=mono)) as emu:
        assert await _burst(session, emu, 150) == [200] * 150
        emu.force_rate_limit(5.0)
        mono.now = 1.5
        status, body, headers = await _get(session, emu)
        assert (status, body["code"]) == (429, 99991400)
        assert float(headers[RATELIMIT_RESET_HEADER]) == pytest.approx(3.5)
        mono.now = 5.01
        assert (await _get(session, emu))[0] == 200
