"""``EndedMeetings``: ended meetings as an async iterator, fed by a real long connection
to the emulator (each event sent twice: each meeting comes out once), read by a worker
that fetches each meeting's participants; ``close`` ends the iteration; a cancelled read
loses nothing; a full buffer holds the sources back."""

from __future__ import annotations

import asyncio

import pytest
from msgspec.structs import astuple

from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding
from feishu_vc_async.events import EndedMeetings, LongConnection, MeetingEnded
from tests._fanout import make_client

pytestmark = pytest.mark.anyio

WALL = 1_780_000_000.0


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _ended(n: int, *, event: str | None = None) -> MeetingEnded:
    return MeetingEnded(
        event_id=event or f"e{n}",
        tenant_key="t",
        app_id="cli_x",
        meeting_id=str(n),
        meeting_no=f"{100000000 + n}",
        start_time=1_700_000_000 + n,
        end_time=1_700_003_600 + n,
    )


async def test_a_worker_reads_each_meeting_once_from_a_long_connection() -> None:
    clock = FakeClock(WALL)
    async with Emulator(
        meetings=5,
        seed=81,
        rate_limit=None,
        ending=MeetingsEnding(count=3, every=60),
        clocks=Clocks(wall=clock),
        events=EventDelivery(repeat=1.0),
    ) as emu:
        ended = EndedMeetings()
        listener = LongConnection(
            base_url=emu.base_url, app_id=emu.app_id, app_secret=emu.app_secret, on_ended=ended.put
        )
        listening = asyncio.get_running_loop().create_task(listener.run())
        rows = {}
        async with make_client(emu) as client:
            clock.now += 181
            async for meeting in ended:
                rows[meeting.meeting_no] = [
                    astuple(p) async for p in client.participants(meeting.query)
                ]
                if len(rows) == 3:
                    ended.close()
        # Each event was sent twice: the copies are acked (and dropped as seen) too.
        while len([a for a in emu.ws_acks if a.code == 200]) < 6:
            await asyncio.sleep(0.01)
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        truth = {q.meeting_no: [astuple(p) for p in emu.participants(q)] for q in emu.ending}
        assert rows == truth
        assert len(emu.ws_acks) == 6


async def test_a_cancelled_read_loses_nothing_and_close_ends_after_the_rest() -> None:
    ended = EndedMeetings()
    reading = asyncio.get_running_loop().create_task(ended.__anext__())
    await asyncio.sleep(0)  # waiting for a meeting
    reading.cancel()
    await ended.put(_ended(1))
    await asyncio.gather(reading, return_exceptions=True)
    await ended.put(_ended(1, event="again"))  # the same meeting told again
    await ended.put(_ended(2))
    ended.close()
    got = [m.meeting_no async for m in ended]
    assert got == ["100000001", "100000002"]
    with pytest.raises(RuntimeError, match="closed"):
        await ended.put(_ended(3))


async def test_a_full_buffer_holds_the_source_back() -> None:
    ended = EndedMeetings(buffer=1)
    await ended.put(_ended(1))
    second = asyncio.get_running_loop().create_task(ended.put(_ended(2)))
    await asyncio.sleep(0)
    assert not second.done()  # the second event is not acknowledged yet
    assert (await ended.__anext__()).meeting_no == "100000001"
    await second
    assert (await ended.__anext__()).meeting_no == "100000002"


def test_bad_sizes_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="buffer"):
        EndedMeetings(buffer=0)
