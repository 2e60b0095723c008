"""Seeded faults of the emulator, seen from a plain aiohttp client."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections import Counter

import aiohttp
import pytest

from feishu_vc_async._constants import LOGID_HEADER, PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, Faults, Latency


async def _outcome(session: aiohttp.ClientSession, emu: Emulator, token: str) -> str:
    """What the client saw: ok, server_error, reset, truncated or html."""
    params = emu.meetings[0].to_params()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with session.get(
            emu.base_url + PARTICIPANT_LIST_PATH, params=params, headers=headers
        ) as r:
            raw = await r.read()
            assert r.headers[LOGID_HEADER]
            if r.status == 502:
                assert r.content_type == "text/html"
                assert raw.lstrip().startswith(b"<html>")
                return "html"
            try:
                body = json.loads(raw)
            except ValueError:
                assert r.status == 200
                return "truncated"
            if r.status == 500:
                assert body["code"] == 121001
                return "server_error"
            assert (r.status, body["code"]) == (200, 0)
            return "ok"
    except (aiohttp.ClientPayloadError, aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
        return "reset"


async def _run(faults: Faults, n: int) -> tuple[list[str], list[str | None]]:
    async with (
        Emulator(meetings=2, seed=1, rate_limit=None, faults=faults) as emu,
        aiohttp.ClientSession() as session,
    ):
        token = emu.tenant_token()
        seen = [await _outcome(session, emu, token) for _ in range(n)]
        return seen, [r.fault for r in emu.requests]


async def test_each_fault_at_its_rate_and_deterministic() -> None:
    faults = Faults(seed=11, error_rate=0.1, reset_rate=0.1, truncate_rate=0.1, html_rate=0.1)
    n = 400
    seen, recorded = await _run(faults, n)
    counts = Counter(seen)
    for name in ("server_error", "reset", "truncated", "html"):
        assert abs(counts[name] / n - 0.1) < 0.05, (name, counts)
    assert abs(counts["ok"] / n - 0.6) < 0.08
    # The client's view and the log agree, request by request.
    assert [s if s != "ok" else None for s in seen] == recorded
    again, _ = await _run(faults, n)
    assert again == seen  # same seed, same sequence
    other, _ = await _run(
        Faults(seed=12, error_rate=0.1, reset_rate=0.1, truncate_rate=0.1, html_rate=0.1), n
    )
    assert other != seen


async def test_error_status_is_configurable() -> None:
    async with (
        Emulator(meetings=2, seed=1, faults=Faults(error_rate=1.0, error_status=503)) as emu,
        aiohttp.ClientSession() as session,
    ):
        params = emu.meetings[0].to_params()
        headers = {"Authorization": f"Bearer {emu.tenant_token()}"}
        async with session.get(
            emu.base_url + PARTICIPANT_LIST_PATH, params=params, headers=headers
        ) as r:
            assert r.status == 503
            assert (await r.json())["code"] == 121001


async def test_constant_latency_delays_each_answer() -> None:
    async with (
        Emulator(meetings=2, seed=1, latency=0.05) as emu,
        aiohttp.ClientSession() as session,
    ):
        token = emu.tenant_token()
        durations = []
        for _ in range(5):
            started = time.perf_counter()
            assert await _outcome(session, emu, token) == "ok"
            durations.append(time.perf_counter() - started)
    assert min(durations) >= 0.05  # never earlier than the latency (no upper bound: a busy
    # machine may add any amount)


async def test_uniform_latency_from_faults() -> None:
    latency = Latency.uniform(0.0, 0.06)
    async with (
        Emulator(meetings=2, seed=1, faults=Faults(latency=latency, seed=3)) as emu,
        aiohttp.ClientSession() as session,
    ):
        token = emu.tenant_token()
        durations = []
        for _ in range(20):
            started = time.perf_counter()
            await _outcome(session, emu, token)
            durations.append(time.perf_counter() - started)
    # Each answer waits its own draw from 0..60 ms: they differ (a lower bound on the
    # longest and on the spread; a busy machine only adds to each).
    assert max(durations) > 0.03
    assert max(durations) - min(durations) > 0.01


def test_latency_distributions_are_seeded() -> None:
    lognormal = Latency.lognormal(0.02, 0.5)
    samples = [lognormal.sample(random.Random(4)) for _ in range(3)]
    assert samples[0] == samples[1] == samples[2]
    rng = random.Random(9)
    draws = [lognormal.sample(rng) for _ in range(4000)]
    assert statistics.median(draws) == pytest.approx(0.02, rel=0.1)
    assert max(draws) > 0.05  # a long tail
    uniform = [Latency.uniform(0.1, 0.2).sample(rng) for _ in range(1000)]
    assert all(0.1 <= d <= 0.2 for d in uniform)
    assert Latency.constant(0.3).sample(rng) == 0.3


def test_fault_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"error_rate \+ reset_rate .* = 1.4: must be at most 1"):
        Faults(error_rate=0.7, reset_rate=0.7)
    with pytest.raises(ValueError, match="error_rate=2: must be a number from 0 to 1"):
        Faults(error_rate=2)
    with pytest.raises(ValueError, match="error_status=404: must be an integer from 500 to 599"):
        Faults(error_status=404)
    with pytest.raises(ValueError, match="latency=-1"):
        Faults(latency=-1)
    with pytest.raises(ValueError, match="revoke_token_after"):
        Faults(revoke_token_after=0)
    with pytest.raises(ValueError, match="kind"):
        Latency("gamma")
