"""Meetings that end while the emulator serves (``MeetingsEnding``), over real sockets.

The emulator's wall clock is a hand-moved fake: a test moves it past an end and the
meeting has ended, with no sleep and nothing read from the real clock. meeting_list is
read with a plain aiohttp client (raw bytes, to compare runs) or the library's
VCClient, participant_list with the VCClient.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from feishu_vc_async import Limits, VCClient
from feishu_vc_async._constants import MEETING_LIST_PATH, PARTICIPANT_LIST_PATH
from feishu_vc_async._timeparse import format_duration, parse_feishu_time
from feishu_vc_async.auth import AppCredentials
from feishu_vc_async.emulator import Clocks, Emulator, ListedMeeting, MeetingsEnding
from feishu_vc_async.meetings import MeetingListQuery
from feishu_vc_async.models import MeetingQuery, MeetingStatus, Participant

ROOT = Path(__file__).resolve().parent.parent
WALL = 1_780_000_000
DRAWN = 30  # the ended meetings drawn besides, with one ongoing (as meetings >= 20)
EVERY = 60
COUNT = 4
# Every ending meeting starts in this range (5 to 90 minutes before WALL); meeting_list
# accepts an end after now.
RECENT = (WALL - 2 * 3600, WALL + 3600)


class FakeClock:
    """A hand-driven clock: tests move time instead of waiting for it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _emulator(clock: FakeClock, **overrides: Any) -> Emulator:
    settings: dict[str, Any] = {
        "meetings": DRAWN,
        "seed": 5,
        "rate_limit": None,
        "meeting_list_rate_limit": None,
        "ending": MeetingsEnding(count=COUNT, every=EVERY),
        "clocks": Clocks(wall=clock),
    }
    settings.update(overrides)
    return Emulator(**settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WALL)


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[Emulator]:
    async with _emulator(clock) as e:
        yield e


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[VCClient]:
    async with VCClient(
        AppCredentials(emu.app_id, emu.app_secret),
        base_url=emu.base_url,
        limits=Limits.unlimited(),
    ) as c:
        yield c


async def _raw(
    session: aiohttp.ClientSession, emu: Emulator, path: str, params: dict[str, str]
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {emu.tenant_token()}"}
    async with session.get(emu.base_url + path, params=params, headers=headers) as r:
        return r.status, await r.read()


async def _listed(
    session: aiohttp.ClientSession, emu: Emulator, status: int, span: tuple[int, int] = RECENT
) -> list[ListedMeeting]:
    """Every item of meeting_list (one page of 100 holds them all here)."""
    params = {"start_time": str(span[0]), "end_time": str(span[1]), "page_size": "100"}
    params["meeting_status"] = str(status)
    got, body = await _raw(session, emu, MEETING_LIST_PATH, params)
    assert got == 200, body
    data = msgspec.json.decode(body)["data"]
    assert data["has_more"] is False
    return [msgspec.convert(item, ListedMeeting) for item in data["meeting_list"]]


def _unix(text: str | None) -> int:
    parsed = parse_feishu_time(text)
    assert parsed is not None, text
    return int(parsed.timestamp())


def _numbers(items: list[ListedMeeting]) -> set[str | None]:
    return {m.meeting_id for m in items}


async def _rows(client: VCClient, query: MeetingQuery) -> list[Participant]:
    return [p async for p in client.participants(query)]


async def _status(
    session: aiohttp.ClientSession, emu: Emulator, query: MeetingQuery
) -> tuple[int, int]:
    got, body = await _raw(session, emu, PARTICIPANT_LIST_PATH, query.to_params())
    return got, msgspec.json.decode(body)["code"]


async def test_a_meeting_is_ongoing_until_its_end_then_ended_in_every_respect(
    emu: Emulator, clock: FakeClock, session: aiohttp.ClientSession, client: VCClient
) -> None:
    first = emu.ending[0]
    numbers = {q.meeting_no for q in emu.ending}
    ends = [WALL + EVERY * k for k in range(1, COUNT + 1)]
    assert [q.meeting_end_time for q in emu.ending] == ends
    assert all(RECENT[0] <= q.meeting_start_time < WALL for q in emu.ending)

    # Before its end: ongoing wherever the platform shows ongoing meetings, in no ended
    # range, and participant_list takes status 1 and "now" as the end, not the final end.
    for now in (WALL, first.meeting_end_time - 1):
        clock.now = now
        assert numbers <= _numbers(await _listed(session, emu, status=1))
        assert not numbers & _numbers(await _listed(session, emu, status=2))
        assert len(emu.meetings) == DRAWN
        assert numbers <= {q.meeting_no for q in emu.ongoing}
        assert await _status(session, emu, first) == (400, 126009)
    ongoing = next(q for q in emu.ongoing if q.meeting_no == first.meeting_no)
    assert ongoing.meeting_status == MeetingStatus.ONGOING
    assert ongoing.meeting_end_time == first.meeting_end_time - 1  # the clock's second
    assert await _status(session, emu, ongoing) == (200, 0)

    # From its end on: an ended meeting, listed with its end and final counts.
    clock.now = first.meeting_end_time
    [item] = [m for m in await _listed(session, emu, status=2) if m.meeting_id in numbers]
    assert item.meeting_id == first.meeting_no
    assert _unix(item.meeting_start_time) == first.meeting_start_time
    assert _unix(item.meeting_end_time) == first.meeting_end_time
    duration = first.meeting_end_time - first.meeting_start_time
    assert item.meeting_duration == format_duration(timedelta(seconds=duration))
    still = numbers - {first.meeting_no}
    assert _numbers(await _listed(session, emu, status=1)) & numbers == still
    assert await _status(session, emu, ongoing) == (400, 126009)  # no longer ongoing

    # participant_list: the final rows, everyone gone by the end, as the ground truth says.
    rows = await _rows(client, first)
    assert rows == emu.participants(first)
    assert item.number_of_participants == str(len(rows))
    assert int(item.number_of_devices or 0) >= len(rows)
    assert (item.organizer, item.user_id) == (rows[0].participant_name, rows[0].user_id)
    for p in rows:
        assert p.leave_time is not None
        assert p.leave_reason is not None
        assert _unix(p.join_time) <= _unix(p.leave_time) <= first.meeting_end_time
    # The ground truth follows the clock too.
    assert emu.meetings[DRAWN:] == [first]
    assert emu.meeting_info(first).ongoing is False
    assert [q.meeting_no for q in emu.ongoing if q.meeting_no in numbers] == [
        q.meeting_no for q in emu.ending[1:]
    ]
    for status in (1, 2):
        assert await _listed(session, emu, status) == emu.listed_meetings(*RECENT, status=status)


async def test_a_poll_sees_one_more_ended_meeting_each_period(
    emu: Emulator, clock: FakeClock, client: VCClient
) -> None:
    # What `feishu-vc sync` will do: list the ended meetings of a recent range, read the
    # participants of those not seen before.
    seen: set[str] = set()
    for k in range(COUNT + 1):
        clock.now = WALL + k * EVERY
        query = MeetingListQuery(start_time=RECENT[0], end_time=RECENT[1])
        listed = [m async for m in client.meetings(query, page_size=100)]
        new = [m for m in listed if m.key not in seen]
        seen.update(m.key for m in new)
        expected = emu.ending[k - 1 : k] if k else []
        assert [m.query() for m in new] == expected
        for meeting, q in zip(new, expected, strict=True):
            rows = await _rows(client, meeting.query())
            assert rows == emu.participants(q)
            assert meeting.number_of_participants == str(len(rows))
        assert emu.meetings[DRAWN:] == emu.ending[:k]
    assert not any(q.meeting_no in {e.meeting_no for e in emu.ending} for q in emu.ongoing)
    assert emu.tenant(emu.tenant_key).meetings == [*emu.meetings, *emu.ongoing]


async def test_an_ongoing_meeting_is_its_final_rows_so_far(
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeClock(WALL)
    # Ten minutes apart, the largest of them has people join after WALL, leave before the
    # moment looked at, and stay past it.
    async with (
        _emulator(clock, ending=MeetingsEnding(count=COUNT, every=600)) as emu,
        VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits.unlimited(),
        ) as client,
    ):
        await _check_views(emu, clock, session, client)


async def _check_views(
    emu: Emulator, clock: FakeClock, session: aiohttp.ClientSession, client: VCClient
) -> None:
    final = max(emu.ending, key=lambda q: emu.meeting_info(q).participant_count)
    ongoing = msgspec.structs.replace(final, meeting_status=MeetingStatus.ONGOING)
    early = msgspec.structs.replace(ongoing, meeting_end_time=WALL)
    first_view = await _rows(client, early)
    moment = (WALL + final.meeting_end_time) // 2
    clock.now = moment
    listed = await _listed(session, emu, status=1)
    [item] = [m for m in listed if m.meeting_id == final.meeting_no]
    now = msgspec.structs.replace(ongoing, meeting_end_time=moment)
    view = await _rows(client, now)
    assert view == emu.participants(now)
    clock.now = final.meeting_end_time
    rows = await _rows(client, final)
    assert rows == emu.participants(final)
    joins = [_unix(p.join_time) for p in rows]
    leaves = [_unix(p.leave_time) for p in rows]

    assert len(first_view) == sum(j <= WALL for j in joins) < len(view)
    assert len(view) == sum(j <= moment for j in joins)
    assert any(leave <= moment for leave in leaves[: len(view)])
    assert any(leave > moment for leave in leaves[: len(view)])
    assert item.meeting_end_time is None
    assert item.meeting_duration == format_duration(
        timedelta(seconds=moment - final.meeting_start_time)
    )
    assert item.number_of_participants == str(len(view))
    for p, whole, join, leave in zip(view, rows, joins, leaves, strict=False):
        if leave <= moment:
            assert p == whole  # left already: the row it keeps
        else:
            # Still in: the final row without its leave, the time so far.
            assert (p.leave_time, p.leave_reason) == (None, None)
            stay = format_duration(timedelta(seconds=moment - join))
            assert p == msgspec.structs.replace(
                whole, leave_time=None, leave_reason=None, time_in_meeting=stay
            )


async def test_ranges_that_hold_an_ended_meeting_list_it_under_either_rule(
    emu: Emulator, clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    first = emu.ending[0]
    start, end = first.meeting_start_time, first.meeting_end_time
    clock.now = end + 3600
    cases = (
        ("start", (start, start), True),
        ("start", (start + 1, end), False),
        ("overlap", (end, end), True),
        ("overlap", (start - 3600, start), True),
        ("overlap", (end + 1, end + 60), False),
    )
    for rule, span, listed in cases:
        emu.meeting_listing = rule
        items = await _listed(session, emu, status=2, span=span)
        assert (first.meeting_no in _numbers(items)) is listed, (rule, span)


async def test_same_seed_same_bytes_and_the_other_meetings_unchanged(
    session: aiohttp.ClientSession,
) -> None:
    clocks = FakeClock(WALL), FakeClock(WALL), FakeClock(WALL)
    async with (
        _emulator(clocks[0]) as a,
        _emulator(clocks[1]) as b,
        _emulator(clocks[2], ending=MeetingsEnding()) as plain,
    ):
        assert a.ending == b.ending
        # The drawn meetings are the same with or without meetings that end.
        assert a.meetings == plain.meetings
        assert a.ongoing[:1] == plain.ongoing
        for q in plain.meetings[:10]:
            assert a.participants(q) == plain.participants(q)
        everything = (WALL - 40 * 86_400, WALL)
        for emu in (a, plain):
            assert await _listed(session, emu, 2, everything) == plain.listed_meetings(*everything)
        for now in (WALL, WALL + 90, WALL + COUNT * EVERY):
            clocks[0].now = clocks[1].now = now
            assert await _bodies(session, a) == await _bodies(session, b)
        other = _emulator(FakeClock(WALL), seed=6)
        assert {q.meeting_no for q in other.ending}.isdisjoint(q.meeting_no for q in a.ending)


async def _bodies(session: aiohttp.ClientSession, emu: Emulator) -> list[bytes]:
    """The raw answers of meeting_list (both statuses) and of participant_list for every
    meeting that ended or is ending."""
    asked = [
        (
            MEETING_LIST_PATH,
            {"start_time": str(RECENT[0]), "end_time": str(RECENT[1]), "meeting_status": status},
        )
        for status in ("1", "2")
    ]
    asked += [(PARTICIPANT_LIST_PATH, q.to_params()) for q in (*emu.meetings[DRAWN:], *emu.ongoing)]
    bodies = []
    for path, params in asked:
        status, body = await _raw(session, emu, path, params)
        assert status == 200, body
        bodies.append(body)
    return bodies


def _digest() -> str:
    """A hash of what the ground truth says of meetings that end, as the clock moves."""
    clock = FakeClock(WALL)
    emu = _emulator(clock, ending=MeetingsEnding(count=6, every=300))
    digest = hashlib.sha256()
    for step in range(8):
        clock.now = WALL + 300 * step - 7
        for status in (1, 2):
            digest.update(msgspec.json.encode(emu.listed_meetings(*RECENT, status=status)))
        for q in (*emu.meetings[DRAWN:], *emu.ongoing):
            digest.update(msgspec.json.encode(emu.participants(q)))
    return digest.hexdigest()


def test_the_same_bytes_in_other_runs() -> None:
    # Other processes, other string hashes: nothing of one run's own reaches the data.
    code = "from tests.test_emulator_ending import _digest; print(_digest())"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert runs == {_digest()}


def test_explicit_ends_at_whole_seconds() -> None:
    emu = _emulator(FakeClock(WALL + 0.25), ending=MeetingsEnding(at=(30, 0.5, 30)))
    # By end; an end is the first whole second at or after the instant.
    assert [q.meeting_end_time for q in emu.ending] == [WALL + 1, WALL + 31, WALL + 31]
    assert len({(q.meeting_no, q.meeting_start_time) for q in emu.ending}) == 3
    drawn = {q.meeting_no for q in (*emu.meetings, *emu.ongoing[:1])}
    assert drawn.isdisjoint(q.meeting_no for q in emu.ending)


@pytest.mark.parametrize(
    ("ending", "field"),
    [
        (MeetingsEnding(count=-1), "MeetingsEnding.count=-1"),
        (MeetingsEnding(count=2.5), "MeetingsEnding.count=2.5"),  # type: ignore[arg-type]
        (MeetingsEnding(count=3, every=0), "MeetingsEnding.every=0"),
        (MeetingsEnding(count=3, every=-5), "MeetingsEnding.every=-5"),
        (MeetingsEnding(count=3, every=float("nan")), "MeetingsEnding.every=nan"),
        (MeetingsEnding(count=3, every=True), "MeetingsEnding.every=True"),
        (MeetingsEnding(count=1000, every=3600), "MeetingsEnding.every=3600"),
        (MeetingsEnding(at=(10, 0)), "MeetingsEnding.at[1]=0"),
        (MeetingsEnding(at=(float("inf"),)), "MeetingsEnding.at[0]=inf"),
        (MeetingsEnding(at=(23 * 3600,)), "MeetingsEnding.at[0]=82800"),
        (MeetingsEnding(at="5"), "MeetingsEnding.at='5'"),
        (MeetingsEnding(count=2, at=(5, 10)), "count=2 and at=(5, 10)"),
    ],
)
def test_bad_values_are_refused_naming_the_field(ending: MeetingsEnding, field: str) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        _emulator(FakeClock(WALL), ending=ending)
