"""``EventSync``: a sync fed by the emulator's ended events through the database's inbox,
on the emulator's hand-moved clock (shared with the sync: "settled" and "reconcile" are
read from it). Events reach the sync through the emulator's router, as a long
connection's or a webhook's ``on_ended`` would hand them over; every wait is for an
observable event (a take, a cycle), never for an amount of time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from msgspec.structs import astuple

from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding
from feishu_vc_async.events import MeetingEnded, meeting_ended
from feishu_vc_async.sync import EventSync, Following, SyncJob, Taken, open_inbox
from tests._databases import TestDatabase
from tests._fanout import make_client

pytestmark = pytest.mark.anyio

WALL = 1_780_000_000
DAY = 86_400
ENDING = 4


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Watched:
    """Takes and cycles as they happen, with a condition to wait for."""

    def __init__(self) -> None:
        self.taken: list[Taken] = []
        self.cycles = 0
        self.changed = asyncio.Condition()

    def on_taken(self, taken: Taken) -> None:
        self.taken.append(taken)
        asyncio.get_running_loop().create_task(self.notify())

    def on_cycle(self, _: object) -> None:
        self.cycles += 1
        asyncio.get_running_loop().create_task(self.notify())

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, done: Callable[[], bool]) -> None:
        async with self.changed:
            await self.changed.wait_for(done)


class Handover:
    """The emulator's connection sink: each event decoded and handed to ``put``, then
    ``watched`` told."""

    def __init__(self, put: Callable[[MeetingEnded], Any], watched: Watched) -> None:
        self.put, self.watched = put, watched
        self.told: list[MeetingEnded] = []

    async def deliver(self, envelope: bytes) -> None:
        ended = meeting_ended(envelope)
        await self.put(ended)
        self.told.append(ended)
        await self.watched.notify()


def _emulator(clock: FakeClock, seed: int, events: EventDelivery | None = None) -> Emulator:
    return Emulator(
        meetings=25,
        seed=seed,
        rate_limit=None,
        meeting_list_rate_limit=None,
        ending=MeetingsEnding(count=ENDING, every=60),
        clocks=Clocks(wall=clock),
        events=events or EventDelivery(),
    )


def _truth(emu: Emulator, queries: list[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        f"{q.meeting_no}@{q.meeting_start_time}": [astuple(p) for p in emu.participants(q)]
        for q in queries
        if emu.participants(q)
    }


@contextlib.asynccontextmanager
async def _following(
    emu: Emulator, database: TestDatabase, clock: FakeClock, following: Following
) -> AsyncIterator[tuple[EventSync, Watched, asyncio.Task[None]]]:
    watched = Watched()
    async with (
        make_client(emu) as client,
        open_inbox(database.url, schema=database.schema) as inbox,
    ):
        job = SyncJob(database.output(name="sync"), since=2 * DAY, commit_interval=0)
        sync = EventSync(
            client,
            job,
            inbox,
            following,
            clock=clock,
            on_cycle=watched.on_cycle,
            on_taken=watched.on_taken,
        )
        task = asyncio.get_running_loop().create_task(sync.run())
        try:
            yield sync, watched, task
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _fetched(emu: Emulator) -> list[str]:
    return [r.params["meeting_no"] for r in emu.requests if "participant_list" in r.path]


async def test_each_meeting_told_ended_is_fetched_once_even_when_told_twice(
    database: TestDatabase,
) -> None:
    clock = FakeClock(WALL)
    # Every event sent twice: the inbox keeps one entry, the meeting is fetched once.
    async with _emulator(clock, 61, EventDelivery(repeat=1.0)) as emu:
        following = Following(settle=30, reconcile=10 * DAY, poll=0.05)
        async with _following(emu, database, clock, following) as (sync, watched, _):
            handover = Handover(sync.put, watched)
            await emu.event_router.connected(handover)
            await watched.until(lambda: watched.cycles == 1)  # the backfill
            emu.reset_log()
            clock.now += ENDING * 60 + 1  # every meeting has ended, none has settled
            await watched.until(lambda: len(handover.told) == 2 * ENDING)
            assert _fetched(emu) == []
            clock.now += 30  # now they have
            await watched.until(lambda: sum(t.fetched for t in watched.taken) == ENDING)
        assert sorted(set(_fetched(emu))) == sorted(q.meeting_no for q in emu.ending)
        assert all(t.run is None or t.run.complete for t in watched.taken)
        truth = _truth(emu, emu.ending)
        held = await database.participants()
        assert {k: held[k] for k in truth} == truth
        assert await database.fetch(f"SELECT * FROM {database.table('feishu_vc_inbox')}") == []


async def test_events_never_sent_are_healed_by_the_reconcile(database: TestDatabase) -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 62, EventDelivery(lose=1.0)) as emu:
        following = Following(settle=0, reconcile=3600, poll=0.05)
        async with _following(emu, database, clock, following) as (_, watched, _task):
            await watched.until(lambda: watched.cycles == 1)
            clock.now += ENDING * 60 + 1
            clock.now += 3600  # the next reconcile is due
            await watched.until(lambda: watched.cycles == 2)
        assert len(emu.events.lost) == ENDING
        assert watched.taken == []
        truth = _truth(emu, emu.ending)
        held = await database.participants()
        assert {k: held[k] for k in truth} == truth


async def test_an_event_kept_before_a_crash_is_taken_by_the_next_run(
    database: TestDatabase,
) -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 63) as emu:
        clock.now += ENDING * 60 + 1
        told = [emu.events.event(m) for m in emu._data.ending.finals]
        async with (
            make_client(emu) as client,
            open_inbox(database.url, schema=database.schema) as inbox,
        ):
            # Kept (acknowledged), and the process died before fetching: twice, the
            # second time as a re-push of the same events.
            job = SyncJob(database.output(name="sync"), since=2 * DAY)
            died = EventSync(client, job, inbox, clock=clock)
            for ended in told + told:
                await died.put(ended)
        kept = await database.fetch(f"SELECT event_id FROM {database.table('feishu_vc_inbox')}")
        assert sorted(kept) == sorted((e.event_id,) for e in told)
        following = Following(settle=0, reconcile=10 * DAY, poll=0.05)
        async with _following(emu, database, clock, following) as (_, watched, _task):
            await watched.until(lambda: sum(t.fetched + t.held for t in watched.taken) >= ENDING)
        truth = _truth(emu, emu.ending)
        held = await database.participants()
        assert {k: held[k] for k in truth} == truth
        assert await database.fetch(f"SELECT * FROM {database.table('feishu_vc_inbox')}") == []


def test_following_names_a_bad_setting() -> None:
    with pytest.raises(ValueError, match="reconcile"):
        Following(reconcile=0)


async def test_a_store_apps_events_are_kept_under_their_tenants(database: TestDatabase) -> None:
    """Routed by tenant_key: a tenant's sync keeps another tenant's event in the inbox
    under that tenant (its own sync takes it) and takes only its own."""
    clock = FakeClock(WALL)
    async with (
        _emulator(clock, 64) as emu,
        open_inbox(database.url, schema=database.schema) as inbox,
    ):
        async with make_client(emu) as client:
            job = SyncJob(database.output(name="sync", tenant_key="tenant-a"), since=2 * DAY)
            sync = EventSync(client, job, inbox, Following(settle=0), clock=clock)
            event = emu.events.event(emu._data.ending.finals[0])
            for tenant in ("tenant-a", "tenant-b"):
                await sync.put(msgspec.structs.replace(event, tenant_key=tenant))
        kept = await database.fetch(
            f"SELECT tenant_key FROM {database.table('feishu_vc_inbox')} ORDER BY 1"
        )
        assert kept == [("tenant-a",), ("tenant-b",)]
        assert [e[0] for e in await inbox.due("tenant-a", int(clock.now), 10)] == ["tenant-a"]
