"""Finding meetings through meeting_list, over real sockets against the emulator.

The emulator's wall clock is fixed (``WALL``) so its data and "now" are the same on
every run. ``window_seconds`` cuts the emulator's 30 days of meetings into many
windows, so every boundary case (a meeting on a boundary, a meeting straddling one)
occurs, under both listing rules the reference leaves open.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from feishu_vc_async import (
    AppCredentials,
    Limits,
    Meeting,
    MeetingListQuery,
    MeetingStatus,
    RateLimit,
    VCClient,
)
from feishu_vc_async._answers import RawResponse, read_answer
from feishu_vc_async._constants import MEETING_LIST_PATH, PARTICIPANT_LIST_PATH
from feishu_vc_async._endpoints import MEETING_LIST
from feishu_vc_async.discovery import LargestFirst
from feishu_vc_async.emulator import Clocks, Emulator, MeetingData
from feishu_vc_async.errors import (
    APIError,
    InternalServerError,
    InvalidQueryError,
    NotFoundError,
    NotSupportedError,
    ParameterError,
    PermissionDeniedError,
)
from feishu_vc_async.models import MeetingQuery
from tests._gateway import client_limit

WALL = 1_780_000_000
DAY = 86_400
EVERYTHING = (WALL - 40 * DAY, WALL)


def _emulator(**overrides: Any) -> Emulator:
    settings: dict[str, Any] = {
        "meetings": 120,
        "seed": 9,
        "rate_limit": None,
        "meeting_list_rate_limit": None,
        "data": MeetingData(webinar_size=150),
        "clocks": Clocks(wall=lambda: WALL),
    }
    settings.update(overrides)
    return Emulator(**settings)


def _client(emu: Emulator, **overrides: Any) -> VCClient:
    settings: dict[str, Any] = {"base_url": emu.base_url, "limits": Limits.unlimited()}
    settings.update(overrides)
    return VCClient(AppCredentials(emu.app_id, emu.app_secret), **settings)


def _keys(meetings: list[Meeting]) -> list[str]:
    return [m.key for m in meetings]


async def test_one_page_and_every_page() -> None:
    async with _emulator() as emu, _client(emu) as client:
        query = MeetingListQuery(start_time=EVERYTHING[0], end_time=EVERYTHING[1])
        page = await client.meeting_list(query, page_size=20)
        assert len(page.meeting_list) == 20
        assert page.has_more
        assert page.page_token
        every = [m async for m in client.meetings(query, page_size=20)]
        truth = emu.listed_meetings(*EVERYTHING)
        assert every == truth
        requests = [r for r in emu.requests if r.path == MEETING_LIST_PATH]
        assert len(requests) == 1 + -(-len(truth) // 20)
        assert client.stats.endpoint("vc/v1/meeting_list").requests == len(requests)
        assert client.stats.requests == 0  # participant_list's budget untouched


@pytest.mark.parametrize("listing", ["start", "overlap"])
@pytest.mark.parametrize("window_days", [1, 3])
@pytest.mark.parametrize("cut", ["through", "at_start"])
async def test_windows_lose_and_duplicate_nothing_at_their_boundaries(
    listing: str, window_days: int, cut: str
) -> None:
    """The range is laid so that a window boundary falls inside the longest meeting
    (``through``: listed by both windows under overlap) or on a meeting's start second
    (``at_start``: both windows include that second, under either rule)."""
    span = window_days * DAY
    async with _emulator(meeting_listing=listing) as emu, _client(emu) as client:
        all_of_them = emu.listed_meetings(*EVERYTHING, include_webinar=True)
        longest = max(all_of_them, key=lambda m: (m.end_seconds or 0) - (m.start_seconds or 0))
        start, end = longest.start_seconds, longest.end_seconds
        assert start is not None
        assert end is not None
        boundary = (start + end) // 2 if cut == "through" else start
        first = boundary - 9 * span  # the tenth window starts at the boundary
        query = MeetingListQuery(
            start_time=first, end_time=min(first + 20 * span, WALL), include_webinar=True
        )
        windows = query.windows(span)
        assert any(w.start_time == boundary for w in windows)
        found = [m async for m in client.meetings(query, window_seconds=span)]
        truth = emu.listed_meetings(query.start_time, query.end_time, include_webinar=True)
        # Each meeting of the range exactly once, whichever window listed it first.
        assert len(_keys(found)) == len(set(_keys(found)))
        assert sorted(_keys(found)) == sorted(m.key for m in truth)
        assert longest.key in _keys(found)
        # The boundary really split the listing: the meeting was listed by two windows.
        listed_in = [
            w
            for w in windows
            if longest.key
            in _keys(emu.listed_meetings(w.start_time, w.end_time, include_webinar=True))
        ]
        assert len(listed_in) == (2 if listing == "overlap" or cut == "at_start" else 1)


async def test_a_resumed_listing_continues_where_it_stopped() -> None:
    async with _emulator() as emu, _client(emu) as client:
        query = MeetingListQuery(start_time=EVERYTHING[0], end_time=EVERYTHING[1])
        first = client.meetings(query, page_size=20, window_seconds=5 * DAY)
        taken: list[Meeting] = []
        async for meeting in first:
            taken.append(meeting)
            if len(taken) == 33:
                break
        position, seen = first.position, set(first.seen)
        again = client.meetings(
            query, page_size=20, window_seconds=5 * DAY, position=position, seen=seen
        )
        rest = [m async for m in again]
        whole = [m async for m in client.meetings(query, page_size=20, window_seconds=5 * DAY)]
        assert _keys(taken + rest) == _keys(whole)


async def test_recurring_numbers_are_separate_meetings_and_a_lookup_finds_each() -> None:
    async with _emulator() as emu, _client(emu) as client:
        everything = emu.listed_meetings(*EVERYTHING, include_webinar=True, include_external=True)
        by_number: dict[str, list[Meeting]] = {}
        for meeting in everything:
            assert meeting.meeting_id is not None
            by_number.setdefault(meeting.meeting_id, []).append(meeting)
        number, held = next((n, ms) for n, ms in by_number.items() if len(ms) > 1)
        found = await client.find_meetings(number, EVERYTHING[0], EVERYTHING[1])
        assert sorted(_keys(found)) == sorted(_keys(held))
        # Each reads its own participants: the exact seconds pick the meeting.
        for meeting in found:
            people = [p async for p in client.participants(meeting.query())]
            assert people == emu.participants(meeting.query())
            assert len(people) == meeting.participant_count
        # A day is enough to find one (in the zone the day is meant in).
        one = held[0]
        assert one.started_at is not None
        day = one.started_at.date()
        on_day = await client.find_meetings(number, day, tz=one.started_at.tzinfo)
        assert one.key in _keys(on_day)


async def test_an_ongoing_meeting_is_found_and_read_up_to_now() -> None:
    async with _emulator() as emu, _client(emu) as client:
        query = MeetingListQuery(
            start_time=WALL - DAY, end_time=WALL, meeting_status=MeetingStatus.ONGOING
        )
        ongoing = [m async for m in client.meetings(query)]
        assert len(ongoing) == len(emu.ongoing) >= 1
        meeting = ongoing[0]
        assert meeting.ongoing
        assert meeting.ended_at is None
        read = meeting.query(now=WALL)
        assert read.meeting_status is MeetingStatus.ONGOING
        assert read.meeting_end_time == WALL
        people = [p async for p in client.participants(read)]
        assert len(people) == meeting.participant_count
        assert any(p.leave_time is None for p in people)  # still in the meeting


async def test_bad_queries_are_refused_before_any_request() -> None:
    async with _emulator() as emu, _client(emu) as client:
        for bad in (
            MeetingListQuery(
                start_time=int(time.time()) + DAY, end_time=int(time.time()) + 2 * DAY
            ),
            MeetingListQuery(start_time=WALL - DAY, end_time=WALL, meeting_no="1", user_id="u"),
            MeetingListQuery(start_time=WALL, end_time=WALL - DAY),
        ):
            with pytest.raises(InvalidQueryError):
                client.meetings(bad)
            with pytest.raises(InvalidQueryError):
                await client.meeting_list(bad)
        with pytest.raises(InvalidQueryError, match="one year"):
            await client.meeting_list(MeetingListQuery(start_time=0, end_time=WALL))
        assert emu.requests == []


async def test_discovery_and_fetching_share_no_budget_and_neither_window_is_exceeded() -> None:
    """meeting_list and participant_list run at once, each paced to its own (scaled) limit:
    neither gateway ever refuses, and neither API's window ever holds more than its limit
    (the client paces a little under it: ``tests/_gateway.py``)."""
    fetch_rate, list_rate = RateLimit(20, 1.0), RateLimit(10, 1.0)
    async with (
        _emulator(
            meetings=60,
            rate_limit=fetch_rate,
            meeting_list_rate_limit=list_rate,
            data=MeetingData(webinar_size=300),
        ) as emu,
        _client(
            emu,
            limits=Limits(
                participant_list=client_limit(fetch_rate),
                meeting_list=client_limit(list_rate),
            ),
        ) as client,
    ):
        query = MeetingListQuery(
            start_time=EVERYTHING[0], end_time=EVERYTHING[1], include_webinar=True
        )
        queue = LargestFirst()

        async def discover() -> None:
            try:
                async for meeting in client.meetings(query, page_size=20, window_seconds=DAY):
                    queue.put(meeting.query(), meeting.participant_count)
            except BaseException as exc:
                queue.close(exc)
                raise
            queue.close()

        rows: dict[str, int] = {}
        discovery = asyncio.create_task(discover())
        async with client.fan_out(queue) as results:
            async for pair in results.meeting_participants():
                query_done: MeetingQuery = pair[0]
                rows[query_done.key] = rows.get(query_done.key, 0) + 1
        await discovery
        truth = emu.listed_meetings(*EVERYTHING, include_webinar=True)
        assert sum(rows.values()) == sum(int(m.number_of_participants or 0) for m in truth)
        assert not [r for r in emu.requests if r.status == 429]
        assert emu.max_in_window(1.0, PARTICIPANT_LIST_PATH) <= fetch_rate.requests
        assert emu.max_in_window(1.0, MEETING_LIST_PATH) <= list_rate.requests
        # Both ran at once: meeting_list requests were still being sent after the first
        # participant_list request.
        first_fetch = min(r.time for r in emu.requests if r.path == PARTICIPANT_LIST_PATH)
        assert max(r.time for r in emu.requests if r.path == MEETING_LIST_PATH) > first_fetch


async def test_largest_first_among_what_was_found() -> None:
    queue = LargestFirst()
    sizes = {"a": 3, "b": 900, "c": 40, "d": None, "e": 900}
    for name, size in sizes.items():
        queue.put(
            MeetingQuery(
                meeting_no="123456789",
                meeting_start_time=1_000 + ord(name),
                meeting_end_time=2_000,
            ),
            size,
        )
    queue.close()
    order = [q.meeting_start_time - 1_000 async for q in queue]
    assert [chr(n) for n in order] == ["b", "e", "c", "a", "d"]


# meeting_list's error table (meeting_list.md): (HTTP status, code, class).
MEETING_LIST_TABLE = [
    (500, 121001, InternalServerError),
    (400, 121002, NotSupportedError),
    (400, 121003, ParameterError),
    (400, 126003, ParameterError),
    (400, 126004, ParameterError),
    (400, 126005, ParameterError),
    (400, 126006, ParameterError),
    (400, 126008, ParameterError),
    (400, 126015, ParameterError),
    (400, 126016, ParameterError),
    (404, 121004, NotFoundError),
    (403, 121005, PermissionDeniedError),
]


@pytest.mark.parametrize(("status", "code", "cls"), MEETING_LIST_TABLE)
def test_meeting_lists_error_table_maps_to_typed_errors(
    status: int, code: int, cls: type[APIError]
) -> None:
    body = msgspec.json.encode({"code": code, "msg": f"m{code}", "error": {"log_id": "L"}})
    raw = RawResponse(status, CIMultiDictProxy(CIMultiDict()), body)
    with pytest.raises(APIError) as caught:
        read_answer(MEETING_LIST, raw)
    err = caught.value
    assert type(err) is cls
    assert (err.http_status, err.code, err.log_id) == (status, code, "L")
    assert err.path == MEETING_LIST_PATH
    assert err.permanent == (cls is not InternalServerError)


async def test_a_refusal_of_meeting_list_over_a_real_socket() -> None:
    """End to end: the emulator refuses (its app lacks the VC admin role: 121005) and the
    listing raises the typed error with status, code and log id, after one request."""
    async with _emulator() as emu, _client(emu) as client:
        emu.deny_app()
        query = MeetingListQuery(start_time=EVERYTHING[0], end_time=EVERYTHING[1])
        with pytest.raises(PermissionDeniedError) as caught:
            [m async for m in client.meetings(query)]
        err = caught.value
        assert (err.http_status, err.code) == (403, 121005)
        assert err.log_id
        assert len([r for r in emu.requests if r.path == MEETING_LIST_PATH]) == 1
