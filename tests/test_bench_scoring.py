"""The quota benchmark's scoring and workload, as pure functions (no emulator, no time)."""

from __future__ import annotations

import math

import pytest

from benchmarks._emulator_proc import MeetingFacts
from benchmarks.bench_quota import steady_state, true_floor, utilization, workload
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.ratelimit import RateLimit

RATE = RateLimit(100, 3.0)


def _meeting(i: int, participants: int) -> MeetingFacts:
    query = MeetingQuery(
        meeting_no=f"{100_000_000 + i}",
        meeting_start_time=1_700_000_000 + i,
        meeting_end_time=1_700_003_600 + i,
    )
    return MeetingFacts(query, participants)


def test_the_true_floor_is_the_quota_or_the_longest_chain() -> None:
    assert true_floor(300, RATE, 9, 0.05) == pytest.approx(9.0)  # the quota's
    assert true_floor(300, RATE, 9, 0.8) == pytest.approx(9.0)  # 7.2 s of chain
    assert true_floor(300, RATE, 20, 0.8) == pytest.approx(16.0)  # the chain's
    assert true_floor(20, RateLimit(20, 1.0), 1, 0.8) == pytest.approx(1.0)


def test_the_workload_takes_every_size_skips_long_chains_and_sorts_largest_first() -> None:
    sizes = [5, 950, 120, 30, 250, 5, 1200, 99, 101]
    meetings = [_meeting(i, n) for i, n in enumerate(sizes)]
    # 10 pages at 100 per 3 s: a floor of 0.3 s; at 90 ms a page, 4+ pages are too long.
    work = workload(meetings, 10, RATE, 0.09)
    chosen = [m for m in meetings if m.query in work.queries]
    assert [m.participants for m in chosen] == [5, 120, 30, 250, 5, 99, 101]
    assert work.skipped == 2  # 950 (10 pages) and 1200 (12 pages)
    assert work.pages == 1 + 2 + 1 + 3 + 1 + 1 + 2
    assert work.longest_chain == 3
    by_query = {m.query: m.participants for m in meetings}
    ordered = [by_query[q] for q in work.queries]
    assert ordered == [250, 120, 101, 99, 30, 5, 5]
    # Ties keep the generator's order.
    fives = [q for q in work.queries if by_query[q] == 5]
    assert fives == [meetings[0].query, meetings[5].query]
    assert work.sizes_differ == len(work.queries)  # no listed sizes given


def test_the_workload_sorts_by_what_meeting_list_reports() -> None:
    meetings = [_meeting(i, n) for i, n in enumerate([10, 20, 30])]
    listed = {meetings[0].query.key: 10, meetings[1].query.key: 20, meetings[2].query.key: 5}
    work = workload(meetings, 3, RATE, 0.05, listed)
    assert work.queries == [meetings[1].query, meetings[0].query, meetings[2].query]
    assert (work.sizes_checked, work.sizes_differ) == (2, 1)


def test_utilization_and_steady_state_read_the_gateway_log() -> None:
    # 301 admitted arrivals 30 ms apart from t=0, and one refusal: exactly the limit.
    log = [(i * 0.03, 200) for i in range(301)] + [(1.0, 429)]
    util, admitted, refused = utilization(log, RATE, 0.0, None)
    assert (admitted, refused) == (301, 1)
    assert util == pytest.approx(1.0)
    assert steady_state(log, RATE, 0.0, None) == pytest.approx(1.0, abs=0.01)
    # The floor of that work over its span (start to last admitted arrival, 9 s).
    assert true_floor(300, RATE, 1, 0.05) / 9.0 == pytest.approx(1.0)
    assert math.isclose(utilization([], RATE, 0.0, None)[0], 0.0)
