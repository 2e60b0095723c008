"""The fan-out's concurrency tuner (driven directly) and the service latency it reads."""

from __future__ import annotations

import asyncio

import pytest

from feishu_vc_async import AppCredentials, ClientStats, FanOutProgress, Limits, RateLimit, VCClient
from feishu_vc_async._constants import API_PARTICIPANT_LIST
from feishu_vc_async.emulator import Emulator
from feishu_vc_async.fanout._tuning import ADAPTIVE_CAP, ADAPTIVE_FLOOR, Tuner, target_for


class _Pool:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.work_waiting = True

    def resize(self, limit: int) -> None:
        self.limit = limit

    def starved(self) -> bool:
        return self.work_waiting


NOW = [0.0]  # the tuners' clock, moved by the tests


def _tuner(limit: int, rate: float) -> tuple[_Pool, Tuner, ClientStats, FanOutProgress]:
    pool = _Pool(limit)
    stats = ClientStats(clock=lambda: NOW[0])
    progress = FanOutProgress(
        stats, total=None, limit=rate, concurrency=limit, window=1.0, clock=lambda: NOW[0]
    )
    return pool, Tuner(pool, progress, stats, rate=rate, clock=lambda: NOW[0]), stats, progress


def _answers(stats: ClientStats, latency: float, n: int = 128) -> None:
    for _ in range(n):
        stats.endpoint(API_PARTICIPANT_LIST).record_latency(latency)


def test_latency_quantile_reads_recent_service_latencies() -> None:
    stats = ClientStats()
    assert stats.latency_quantile() is None
    for ms in range(1, 101):
        stats.endpoint(API_PARTICIPANT_LIST).record_latency(ms / 1000)
    assert stats.latency_quantile(0.9) == pytest.approx(0.090)
    assert stats.latency_quantile(0.0) == pytest.approx(0.001)
    assert stats.latency_quantile(1.0) == pytest.approx(0.100)
    _answers(stats, 2.0)  # only the recent ones count
    assert stats.latency_quantile(0.5) == 2.0
    with pytest.raises(ValueError, match=r"q=1\.5"):
        stats.latency_quantile(1.5)


@pytest.mark.parametrize(
    ("rate", "latency", "expected"),
    [(100 / 3, 0.05, 4), (100 / 3, 0.2, 9), (100 / 3, 0.8, 29), (100 / 60, 0.8, 4)],
)
def test_target_covers_rate_times_latency_plus_margin(
    rate: float, latency: float, expected: int
) -> None:
    assert target_for(rate, latency) == expected


def test_goes_straight_to_the_target_when_work_waits() -> None:
    # The 800 ms case a creeping tuner never reached: 100 per 3 s needs ~29 in flight.
    pool, tuner, stats, progress = _tuner(4, rate=100 / 3)
    assert tuner.retune() == 4  # no answer yet: nothing to size by
    _answers(stats, 0.8)
    assert tuner.retune() == 29
    assert pool.limit == progress.concurrency == tuner.target == 29
    assert tuner.retune() == 29  # stable while the latency is


def test_does_not_grow_when_nothing_waits_for_a_worker() -> None:
    pool, tuner, stats, _ = _tuner(4, rate=50.0)
    pool.work_waiting = False
    _answers(stats, 0.4)
    assert tuner.retune() == 4
    assert tuner.target == 22


def test_shrinks_halfway_per_step_to_a_lower_target() -> None:
    pool, tuner, stats, _ = _tuner(30, rate=50.0)
    pool.work_waiting = False
    _answers(stats, 0.1)  # ceil(5) + 2 = 7
    steps = [tuner.retune() for _ in range(6)]
    assert steps == [19, 13, 10, 9, 8, 7]


async def test_waiting_at_the_limiter_does_not_count_as_latency() -> None:
    # 20 calls through a 10-per-second limiter take ~2 s from outside; the service
    # latency the tuner sizes by stays the server's 50 ms.
    async with (
        Emulator(meetings=1, seed=5, rate_limit=None, latency=0.05) as emu,
        VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=RateLimit(10, 1.0)),
        ) as client,
    ):
        loop = asyncio.get_running_loop()

        async def call() -> float:
            started = loop.time()
            await client.participant_list(emu.meetings[0])
            return loop.time() - started

        outside = sorted(await asyncio.gather(*(call() for _ in range(20))))
        p90 = client.stats.latency_quantile(0.9)
    assert p90 is not None
    assert p90 >= 0.05  # the server's own latency is in it
    # From outside, the later calls also waited for their slots: the 18th of 20 at 10/s
    # at least 1.6 s. Counted as latency, that wait would put the p90 there too. (No
    # bound on the p90 itself: a busy machine may add any amount to both.)
    assert outside[-1] > 1.0
    assert p90 <= outside[17] - 1.0


@pytest.mark.parametrize(("latency", "expected"), [(0.0, ADAPTIVE_FLOOR), (100.0, ADAPTIVE_CAP)])
def test_floor_and_cap(latency: float, expected: int) -> None:
    pool, tuner, stats, _ = _tuner(10, rate=50.0)
    _answers(stats, latency)
    for _ in range(10):
        tuner.retune()
    assert pool.limit == expected


def test_observe_steps_once_per_interval() -> None:
    pool, tuner, stats, _ = _tuner(4, rate=50.0)
    _answers(stats, 0.8)
    NOW[0] += tuner.interval * 0.99
    tuner.observe()  # the first interval has not passed
    assert pool.limit == 4
    NOW[0] += tuner.interval * 0.02
    tuner.observe()
    assert pool.limit == target_for(50.0, 0.8)
