"""The fan-out's concurrency gate and tuner, driven directly (no I/O)."""

from __future__ import annotations

import pytest

from feishu_vc_async.fanout._progress import Progress
from feishu_vc_async.fanout._tuning import ADAPTIVE_CAP, ADAPTIVE_FLOOR, Tuner


class _Stats:
    requests = 0
    retries = 0
    rate_limited = 0

    def recent_rate(self, window: float = 10.0) -> float:
        return 0.0


class _Pool:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.work_waiting = False

    def resize(self, limit: int) -> None:
        self.limit = limit

    def starved(self) -> bool:
        waiting, self.work_waiting = self.work_waiting, False
        return waiting


def _tuner(limit: int, rate: float) -> tuple[_Pool, Tuner, Progress]:
    slots = _Pool(limit)
    stats = _Stats()
    progress = Progress(stats, total=None, limit=rate, concurrency=limit, window=1.0)
    return slots, Tuner(slots, progress, stats, rate=rate), progress


def _feed(tuner: Tuner, latency: float, n: int = 20) -> None:
    tuner._samples.extend([latency] * n)


def test_grows_toward_rate_times_p90_when_work_waits() -> None:
    slots, tuner, progress = _tuner(4, rate=50.0)
    # ceil(50/s × 0.4 s) + 2 = 22; growth is by half per step at most, and each step
    # up raised the send rate.
    steps = []
    for sending in (5.0, 7.5, 11.0, 16.0, 24.0, 30.0):
        _feed(tuner, 0.4)
        slots.work_waiting = True
        steps.append(tuner.retune(sending=sending))
    assert steps == [6, 9, 13, 19, 22, 22]
    assert tuner.target == 22
    assert progress.concurrency == 22


def test_a_step_up_that_does_not_raise_the_rate_is_undone() -> None:
    # Another process shares the limiter: this one never sends more than 12/s, and its
    # latencies (inflated by the shared limiter's queue) keep asking for more.
    slots, tuner, _ = _tuner(4, rate=50.0)
    seen = []
    for _ in range(12):
        _feed(tuner, 1.0)
        slots.work_waiting = True
        seen.append(tuner.retune(sending=12.0))
    assert seen[:3] == [6, 4, 4]
    assert max(seen) == 6  # it never ran away toward ceil(50 × 1.0) + 2


def test_does_not_grow_when_nothing_waits_for_a_slot() -> None:
    _, tuner, _ = _tuner(4, rate=50.0)
    _feed(tuner, 0.4)
    assert tuner.retune(sending=10.0) == 4
    _feed(tuner, 0.01)  # the target drops below the current limit: shrink to it
    assert tuner.retune(sending=10.0) == ADAPTIVE_FLOOR + 1


def test_at_the_limit_keeps_the_target_and_steps_down_to_it() -> None:
    slots, tuner, _ = _tuner(4, rate=50.0)
    _feed(tuner, 0.1)  # ceil(5) + 2 = 7
    slots.work_waiting = True
    assert tuner.retune(sending=10.0) == 6
    slots.work_waiting = True
    _feed(tuner, 0.1)
    assert tuner.retune(sending=20.0) == 7
    # Saturated: latencies inflated by the limiter's queue must not raise the target.
    for _ in range(3):
        _feed(tuner, 5.0)
        slots.work_waiting = True
        assert tuner.retune(sending=49.0) == 7
    assert tuner.target == 7
    slots.resize(12)
    results = []
    for _ in range(6):
        _feed(tuner, 5.0)
        results.append(tuner.retune(sending=50.0))
    assert results == [11, 10, 9, 8, 7, 7]


@pytest.mark.parametrize(("latency", "expected"), [(0.0, ADAPTIVE_FLOOR), (100.0, ADAPTIVE_CAP)])
def test_floor_and_cap(latency: float, expected: int) -> None:
    slots, tuner, _ = _tuner(ADAPTIVE_FLOOR if latency else ADAPTIVE_CAP, rate=50.0)
    for step in range(20):
        _feed(tuner, latency)
        slots.work_waiting = True
        tuner.retune(sending=1.2**step)  # every step up paid, still below the limit
    assert slots.limit == expected
