"""The emulator's ended events (``EventFeed``, ``EventRouter``): made once per meeting as
the fake wall clock passes its end, routed to one open connection, held while none is
open; the ``lose`` and ``repeat`` faults, seeded."""

from __future__ import annotations

import asyncio

import pytest

from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding
from feishu_vc_async.events import ALL_MEETING_ENDED, EventHeader, decode_event, meeting_ended

WALL = 1_780_000_000.0


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Collect:
    """A sink that keeps what it is given, and says when it has ``want`` events."""

    def __init__(self, want: int) -> None:
        self.got: list[bytes] = []
        self.want = want
        self.full = asyncio.Event()

    async def deliver(self, envelope: bytes) -> None:
        self.got.append(envelope)
        if len(self.got) >= self.want:
            self.full.set()


def _emulator(clock: FakeClock, events: EventDelivery | None = None) -> Emulator:
    return Emulator(
        meetings=5,
        seed=3,
        rate_limit=None,
        meeting_list_rate_limit=None,
        ending=MeetingsEnding(count=6, every=10),
        clocks=Clocks(wall=clock),
        events=events or EventDelivery(),
    )


async def test_each_meeting_is_told_once_as_it_ends_and_held_until_a_connection() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock) as emu:
        clock.now += 25  # two have ended, nobody listens yet
        while len(emu.event_router.held) < 2:
            await asyncio.sleep(0.005)
        sink = Collect(want=6)
        await emu.event_router.connected(sink)
        assert len(sink.got) == 2
        assert not emu.event_router.held
        clock.now += 60
        await asyncio.wait_for(sink.full.wait(), 30)
        told = [meeting_ended(e) for e in sink.got]
        assert [t.query for t in told] == emu.ending
        assert len({t.event_id for t in told}) == 6
        header = decode_event(sink.got[0])
        assert isinstance(header, EventHeader)
        assert header.event_type == ALL_MEETING_ENDED
        assert all(t.tenant_key == emu.tenant_key and t.app_id == emu.app_id for t in told)
        assert [a.event_id for a in emu.events.announced] == [t.event_id for t in told]


async def test_lose_and_repeat_are_seeded_and_accounted() -> None:
    clock = FakeClock(WALL)
    options = EventDelivery(lose=0.3, repeat=0.3)
    async with _emulator(clock, options) as emu:
        sink = Collect(want=1)
        await emu.event_router.connected(sink)
        clock.now += 100
        while len(emu.events.announced) + len(emu.events.lost) < 6:
            await asyncio.sleep(0.005)
        told = [meeting_ended(e) for e in sink.got]
        ids = {t.event_id for t in told}
        assert ids == {a.event_id for a in emu.events.announced}
        assert not ids & {lost.event_id for lost in emu.events.lost}
        assert len(told) >= len(ids)
        first = ([t.event_id for t in told], [x.event_id for x in emu.events.lost])
    clock = FakeClock(WALL)
    async with _emulator(clock, options) as emu:
        sink = Collect(want=1)
        await emu.event_router.connected(sink)
        clock.now += 100
        while len(emu.events.announced) + len(emu.events.lost) < 6:
            await asyncio.sleep(0.005)
        assert (
            [meeting_ended(e).event_id for e in sink.got],
            [x.event_id for x in emu.events.lost],
        ) == first


def test_a_share_out_of_range_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"EventDelivery\.lose=1\.5"):
        _emulator(FakeClock(WALL), EventDelivery(lose=1.5))
