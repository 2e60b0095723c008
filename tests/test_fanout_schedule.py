"""How the fan-out schedules a whole run: the ramp before the first answer, largest first.

On virtual time (``tests/_virtual_time.py``) with the real ``LocalRateLimiter`` and a
page source whose answers take a fixed latency, so the figures are exact: the pool's
width when the first answer lands, the sends in the first latency, the whole run's span
against its floor. The emulator test at the end runs the same over real sockets.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from feishu_vc_async import ClientStats, RateLimit
from feishu_vc_async._clock import Clock, loop_time
from feishu_vc_async._constants import API_PARTICIPANT_LIST
from feishu_vc_async._timeparse import format_feishu_time
from feishu_vc_async.discovery import largest_first
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.errors import InvalidQueryError
from feishu_vc_async.fanout import FanOut, MeetingFailure, PageItem
from feishu_vc_async.fanout._tuning import ADAPTIVE_START, ramp_width, target_for
from feishu_vc_async.meetings import Meeting
from feishu_vc_async.models import MeetingQuery, Participant, ParticipantPage
from feishu_vc_async.ratelimit import LimitKey, LocalRateLimiter
from tests._fanout import make_client

START = 1_700_000_000
KEY = LimitKey(API_PARTICIPANT_LIST, "cli_schedule")


def _time(seconds: int) -> str:
    return format_feishu_time(datetime.fromtimestamp(seconds, UTC))


def _meeting(no: int, participants: int | None) -> Meeting:
    return Meeting(
        meeting_id=f"{no:09d}",
        meeting_start_time=_time(START + no),
        meeting_end_time=_time(START + no + 3600),
        number_of_participants=None if participants is None else str(participants),
    )


class _Source:
    """A page source: the real limiter, asked as the client's transport asks it (a page
    with a token is a continuing read), then an answer ``latency`` seconds later; a
    meeting of ``n`` participants has ``ceil(n / 100)`` pages. Records every send."""

    def __init__(self, rate: RateLimit, latency: float, sizes: dict[str, int]) -> None:
        self.rate_limit: RateLimit | None = rate
        self.stats = ClientStats()
        self.clock: Clock = loop_time
        self._latency = latency
        self._sizes = sizes
        self._limiter = LocalRateLimiter(rate)
        self.sends: list[tuple[float, str]] = []
        self.widths: list[int] = []  # the pool's width at each answer
        self.fan_out: FanOut | None = None

    async def participant_list(
        self, query: MeetingQuery, *, page_size: int = 100, page_token: str | None = None
    ) -> ParticipantPage:
        await self._limiter.acquire(KEY, continuing=page_token is not None)
        endpoint = self.stats.endpoint(API_PARTICIPANT_LIST)
        sent = endpoint.record_request()
        self.sends.append((sent, query.meeting_no))
        await asyncio.sleep(self._latency)
        endpoint.record_answer(sent)
        assert self.fan_out is not None
        self.widths.append(self.fan_out.progress.concurrency)
        pages = max(1, math.ceil(self._sizes.get(query.meeting_no, 0) / 100))
        index = 0 if page_token is None else int(page_token)
        more = index + 1 < pages
        return ParticipantPage(
            participants=[Participant(participant_name="p")],
            page_token=str(index + 1) if more else None,
            has_more=more,
        )


async def _run(source: _Source, queries: Sequence[MeetingQuery | Meeting]) -> list[PageItem]:
    fan_out = source.fan_out = FanOut(source, queries)
    items: list[PageItem] = []
    async with fan_out as results:
        async for item in results:
            assert isinstance(item, PageItem)
            items.append(item)
    return items


def test_ramp_keeps_a_margin_ahead_of_the_requests_sent() -> None:
    assert ramp_width(0) == ADAPTIVE_START  # nothing sent: the starting width
    # At the first answer of an 800 ms server at 100 per 3 s, about 27 are out: the
    # width is then the target that answer asks for, give or take one.
    assert abs(ramp_width(27) - target_for(100 / 3, 0.8)) <= 1
    assert ramp_width(10_000) == target_for(100 / 3, 1e6)  # the cap


@pytest.mark.virtual_time
@pytest.mark.parametrize("latency", [0.05, 0.2, 0.8, 2.0])
async def test_whole_run_keeps_the_limiter_busy_from_the_first_slot(latency: float) -> None:
    rate = RateLimit(100, 3.0)
    meetings = [_meeting(i, 50) for i in range(1, 301)]  # 300 one-page meetings
    source = _Source(rate, latency, {})
    started = asyncio.get_running_loop().time()
    items = await _run(source, meetings)
    assert len(items) == 300
    sends = [t for t, _ in source.sends]
    # No slow start: within the first latency the limiter's slots all went out (a slot
    # per interval of the pacing, less the one in flight at the boundary).
    interval = 3.0 * 1.01 / (100 + 1 - 1.25)
    in_first_latency = sum(1 for t in sends if t - started < latency)
    assert in_first_latency >= math.floor(latency / interval)
    # The whole run, start to last send, against the floor of 300 requests at the
    # limit: what the limiter's own pacing allows (98.8 % of the quota), nothing lost to
    # the ramp or the tail.
    span = sends[-1] - started
    assert span <= 299 * interval * 1.02
    # ...and the pool did not overshoot: at most the target plus one slot.
    assert max(source.widths) <= target_for(100 / 3, latency) + 1


@pytest.mark.virtual_time
async def test_a_warm_client_starts_at_its_target() -> None:
    rate = RateLimit(100, 3.0)
    source = _Source(rate, 0.8, {})
    for _ in range(20):
        source.stats.endpoint(API_PARTICIPANT_LIST).record_latency(0.8)
    fan_out = source.fan_out = FanOut(source, [_meeting(i, 1) for i in range(1, 61)])
    async with fan_out as results:
        await asyncio.sleep(0)  # the ramp task's first step
        assert results.progress.concurrency == target_for(100 / 3, 0.8)
        async for _ in results:
            pass


def test_largest_first_orders_what_says_its_size() -> None:
    small, big, unknown, mid = _meeting(1, 3), _meeting(2, 900), _meeting(3, None), _meeting(4, 250)
    query = MeetingQuery(meeting_no="000000005", meeting_start_time=START, meeting_end_time=START)

    def size_of(item: Meeting | MeetingQuery) -> int | None:
        return item.participant_count if isinstance(item, Meeting) else None

    items = [small, big, unknown, query, mid]
    assert largest_first(items, size_of) == [big, mid, small, unknown, query]
    queries = [query, query]
    assert largest_first(queries, size_of) is queries  # nothing to order by: untouched


@pytest.mark.virtual_time
async def test_a_big_meeting_listed_last_is_started_first() -> None:
    # 30 pages at 800 ms is a 24 s chain; started last it would end the run alone.
    rate = RateLimit(100, 3.0)
    meetings = [_meeting(i, 50) for i in range(1, 241)] + [_meeting(999, 3000)]
    source = _Source(
        rate,
        0.8,
        {m.meeting_id or "": 3000 if m.meeting_id == "000000999" else 50 for m in meetings},
    )
    started = asyncio.get_running_loop().time()
    items = await _run(source, meetings)
    assert source.sends[0][1] == "000000999"
    assert sum(1 for item in items if item.query.meeting_no == "000000999") == 30
    # The floor: 270 requests at the limit (8.1 s) or the 30-page chain (24 s + the
    # waits for a slot): the chain, so the run ends within a slot per page of it.
    interval = 3.0 * 1.01 / (100 + 1 - 1.25)
    span = source.sends[-1][0] - started
    assert span <= 29 * (0.8 + 2 * interval)


async def test_meetings_from_meeting_list_are_read_as_their_queries() -> None:
    async with Emulator(meetings=8, seed=3, rate_limit=None, data=MeetingData(webinars=0)) as emu:
        await _read_listed_meetings(emu)


async def _read_listed_meetings(emu: Emulator) -> None:
    listed = [
        Meeting(
            meeting_id=q.meeting_no,
            meeting_start_time=_time(q.meeting_start_time),
            meeting_end_time=_time(q.meeting_end_time),
            number_of_participants=str(i),
        )
        for i, q in enumerate(emu.meetings[:5])
    ]
    unreadable = Meeting(
        meeting_id="123456789", meeting_start_time="yesterday", email="o@example.com"
    )
    async with make_client(emu) as client, client.fan_out([*listed, unreadable]) as results:
        items = [item async for item in results]
    pages = [item for item in items if isinstance(item, PageItem)]
    assert {item.query.key for item in pages} == {q.key for q in emu.meetings[:5]}
    failures = [item for item in items if isinstance(item, MeetingFailure)]
    assert len(failures) == 1
    assert failures[0].query.meeting_no == "123456789"  # no organizer's details in it
    error = failures[0].error
    assert isinstance(error, InvalidQueryError)
    assert error.field == "meeting"
    assert "example.com" not in repr(failures[0])


@pytest.mark.virtual_time
async def test_continuing_pages_go_first_when_long_meetings_set_the_floor() -> None:
    # Five meetings of 30 pages and 650 of one at 800 ms: the requests at the limit
    # (800 x 30 ms = 24 s) and each long meeting's chain (30 x 0.8 s = 24 s) are both
    # the floor. A long meeting's page that queued behind new meetings' first pages
    # would lose those slots on every page of its chain (measured: 25.5 s, 6 % over);
    # served first, it loses at most a slot's wait per page.
    rate = RateLimit(100, 3.0)
    meetings = [_meeting(100 + i, 50) for i in range(650)] + [_meeting(i, 3000) for i in range(5)]
    sizes = {m.meeting_id or "": int(m.number_of_participants or 0) for m in meetings}
    source = _Source(rate, 0.8, sizes)
    started = asyncio.get_running_loop().time()
    await _run(source, meetings)
    assert len(source.sends) == 800
    floor = max(800 * 3.0 / 100, 30 * 0.8)
    assert source.sends[-1][0] - started <= 1.04 * floor


@pytest.mark.virtual_time
async def test_the_ramp_waits_while_nothing_is_sent() -> None:
    # A 429 pause before the first request: no slot is granted, so no worker is added
    # for one (a ramp by the clock would reach the cap of the pool by the pause's end).
    rate = RateLimit(100, 3.0)
    source = _Source(rate, 0.8, {})
    await source._limiter.report_rate_limited(KEY, 5.0)
    fan_out = source.fan_out = FanOut(source, [_meeting(i, 1) for i in range(1, 301)])
    async with fan_out as results:
        await asyncio.sleep(4.9)
        assert results.progress.concurrency == ADAPTIVE_START
        assert source.sends == []
        async for _ in results:
            pass
    assert max(source.widths) <= target_for(100 / 3, 0.8) + 1
