"""``Sync``: a database kept current as meetings end, on the emulator's hand-moved clock
(meetings of ``MeetingsEnding`` end as it passes their ends; nothing waits for time)."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import astuple

from feishu_vc_async.emulator import Clocks, Emulator, MeetingsEnding
from feishu_vc_async.export import OutputInUseError
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.sync import Cycle, Sync, SyncJob
from tests._databases import TestDatabase
from tests._fanout import make_client

pytestmark = pytest.mark.anyio

WALL = 1_780_000_000
DAY = 86_400
SINCE = 60 * DAY


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _held(emu: Emulator, now: float) -> list[MeetingQuery]:
    """The meetings the sync should hold at ``now``: listed as ended (its filters: no
    webinars, no external meetings), ended since its floor."""
    floor = WALL - SINCE
    listed = [m.query() for m in emu.listed_meetings(floor - 2 * DAY, int(now))]
    return [q for q in listed if q.meeting_end_time >= floor]


def _truth(emu: Emulator, now: float) -> dict[str, list[tuple[Any, ...]]]:
    """Every participant of :func:`_held`'s meetings, by meeting, in order."""
    truth = {}
    for query in _held(emu, now):
        rows = [astuple(p) for p in emu.participants(query)]
        if rows:
            truth[f"{query.meeting_no}@{query.meeting_start_time}"] = rows
    return truth


async def test_a_sync_backfills_then_takes_each_meeting_as_it_ends(
    database: TestDatabase,
) -> None:
    clock = FakeClock(WALL)
    ending = MeetingsEnding(count=3, every=60)
    async with (
        Emulator(
            meetings=30, seed=51, rate_limit=None, ending=ending, clocks=Clocks(wall=clock)
        ) as emu,
        make_client(emu) as client,
    ):
        cycles: list[Cycle] = []
        job = SyncJob(database.output(name="sync"), since=SINCE, commit_interval=0)
        sync = Sync(client, job, clock=clock, on_cycle=cycles.append)
        backfill = await sync.run(once=True)
        assert backfill.caught_up
        assert await database.participants() == _truth(emu, clock.now)
        assert backfill.new == len(_held(emu, clock.now)) > 20

        for step, ended in ((61, 1), (1, 0), (120, 2)):
            clock.now += step
            emu.reset_log()
            cycle = await sync.run(once=True)
            assert cycle.caught_up
            assert cycle.new == ended  # only the meetings that ended since: none again
            fetched = {r.params["meeting_no"] for r in emu.requests if "participant_list" in r.path}
            assert len(fetched) == ended
            assert await database.participants() == _truth(emu, clock.now)
        held = _held(emu, clock.now)
    assert [c.number for c in cycles] == [1, 2, 3, 4]
    assert sum(c.new for c in cycles) == len(held)
    meetings = await database.fetch(f"SELECT count(*) FROM {database.table('feishu_vc_meetings')}")
    assert meetings == [(len(held),)]


async def test_a_second_sync_on_the_same_tables_is_refused(database: TestDatabase) -> None:
    clock = FakeClock(WALL)
    async with (
        Emulator(meetings=5, seed=52, rate_limit=None, clocks=Clocks(wall=clock)) as emu,
        make_client(emu) as client,
    ):
        first = database.output(name="sync")
        async with first.lock():
            second = SyncJob(database.output(name="sync", lock_wait=0.0), since=SINCE)
            with pytest.raises(OutputInUseError, match="is being written by"):
                await Sync(client, second, clock=clock).run(once=True)
        assert emu.requests == []


def test_a_sync_job_names_a_bad_setting() -> None:
    with pytest.raises(ValueError, match="interval"):
        SyncJob(None, interval=0)  # type: ignore[arg-type]
