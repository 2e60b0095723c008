"""One run of ``bench_events``: the emulator (in a thread of its own, with its own event
loop) ends meetings on a fake wall clock; a ``LongConnection`` hands each event to
``EventSync.put``; the sync fetches the meeting into a database. Each event's send moment
(the emulator's router handing it to the connection) and each meeting's commit moment
(the database store's commit returning with its record) are taken on
``time.monotonic()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.client import VCClient
from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding
from feishu_vc_async.events import LongConnection, MeetingEnded, meeting_ended
from feishu_vc_async.export import database_output
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.ratelimit import RateLimit
from feishu_vc_async.sync import EventSync, Following, SyncJob, Taken, open_inbox

T = TypeVar("T")
DAY = 86_400
PAGE_SIZE = 100  # participant_list's largest page, the sync's default
Key = tuple[str, int]  # (meeting_no, start)


class FakeWall:
    """The emulator's and the sync's wall clock, moved by hand."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class EmulatorThread:
    """``emu`` served from a thread with its own event loop, so the sync's loop and the
    emulator's do not wait on each other's callbacks (they still share the GIL)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        self.run(self.emu.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.emu.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@dataclass
class Load:
    """``count`` meetings, ending ``every`` real seconds apart (0: all at once)."""

    name: str
    count: int
    every: float


@dataclass
class RunResult:
    sent: dict[Key, float]
    committed: dict[Key, float]
    announced: list[Key]
    pages: dict[Key, int]
    expected_rows: dict[Key, int]
    held_rows: dict[Key, tuple[int, int]]  # rows, distinct row numbers
    rate_limited: int
    requests: int
    first_pages: dict[Key, int]  # participant_list requests without a page token
    request_s: float  # one one-page participant_list request, median, client side
    put: dict[Key, float] = field(default_factory=dict)  # EventSync.put returned
    asked: dict[Key, float] = field(default_factory=dict)  # first page's arrival
    takes: list[Taken] = field(default_factory=list)
    backfill_s: float = 0.0

    def latencies(self) -> list[float]:
        return [self.committed[k] - self.sent[k] for k in self.announced if k in self.committed]


def floor_latencies(
    sends: Sequence[tuple[float, int]], rate: RateLimit, request_s: float
) -> list[float]:
    """The least latency (send → last page back) of each meeting (its send moment, its
    pages) that any client paced at the limit's sustained rate can reach: every page
    starts once the event is sent (a later page once the one before is back) and no
    sooner than one ``period / requests`` after the page before it of any meeting (no
    burst credit: a client must not count on a sliding window); each page takes
    ``request_s``. Meetings go in send order, fewest pages first among those sent
    together (what minimises the waits of a queue). Database time is not counted."""
    interval = rate.period / rate.requests
    free = -math.inf
    out: list[float] = []
    for sent, pages in sorted(sends):
        ready = sent
        for _ in range(pages):
            start = max(ready, free)
            free = start + interval
            ready = start + request_s
        out.append(ready - sent)
    return out


async def _held_rows(url: str, schema: str | None) -> dict[Key, tuple[int, int]]:
    sql = (
        "SELECT meeting_no, meeting_start_time, count(*), count(DISTINCT row_no) FROM {t} "
        "GROUP BY meeting_no, meeting_start_time"
    )
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows = db.execute(sql.format(t="feishu_vc_participants")).fetchall()
        finally:
            db.close()
    else:
        import asyncpg

        conn = await asyncpg.connect(url, timeout=10)
        try:
            rows = await conn.fetch(sql.format(t=f'"{schema}".feishu_vc_participants'))
        finally:
            await conn.close()
    return {(str(r[0]), int(r[1])): (int(r[2]), int(r[3])) for r in rows}


async def _until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.01)


async def _advance(wall: FakeWall, start: int, load: Load) -> None:
    """Move the wall clock over each meeting's end on the real-time schedule of ``load``
    (meeting k ends at ``start + k`` fake seconds)."""
    if load.every == 0:
        wall.now = start + 1
        return
    t0 = time.monotonic()
    for k in range(1, load.count + 1):
        delay = t0 + (k - 1) * load.every - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        wall.now = start + k


def run_load(
    load: Load,
    *,
    url: str,
    schema: str | None,
    rate: RateLimit,
    seed: int,
    already_ended: int,
    timeout: float,
) -> RunResult:
    """One load into one database; see the module docstring."""
    start = int(time.time())
    wall = FakeWall(start)
    if load.every == 0:
        ending = MeetingsEnding(at=[1.0] * load.count)
    else:
        ending = MeetingsEnding(count=load.count, every=1.0)
    emu = Emulator(
        meetings=already_ended,
        seed=seed,
        rate_limit=rate,
        meeting_list_rate_limit=rate,
        ending=ending,
        clocks=Clocks(wall=wall),
        events=EventDelivery(),
    )
    sent: dict[Key, float] = {}
    router = emu.event_router
    send = router.send

    async def timed_send(envelope: bytes) -> None:
        ended = meeting_ended(envelope)
        sent.setdefault((ended.meeting_no, ended.start_time), time.monotonic())
        await send(envelope)

    router.send = timed_send  # type: ignore[method-assign]
    with EmulatorThread(emu) as served:
        return asyncio.run(_follow(served, wall, start, load, url, schema, rate, sent, timeout))


async def _follow(
    served: EmulatorThread,
    wall: FakeWall,
    start: int,
    load: Load,
    url: str,
    schema: str | None,
    rate: RateLimit,
    sent: dict[Key, float],
    timeout: float,
) -> RunResult:
    emu = served.emu
    committed: dict[Key, float] = {}
    output = database_output(url, schema=schema, name="sync")
    store: Any = output._store
    store_commit = store.commit

    async def timed_commit(meetings: Sequence[tuple[Any, ...]], progress: Any) -> None:
        await store_commit(meetings, progress)
        now = time.monotonic()
        for m in meetings:
            committed.setdefault((str(m[1]), int(m[2])), now)

    store.commit = timed_commit
    takes: list[Taken] = []
    cycles: list[object] = []
    wanted = {(q.meeting_no, q.meeting_start_time) for q in emu.ending}
    async with (
        VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=rate, meeting_list=rate),
        ) as client,
        open_inbox(url, schema=schema) as inbox,
    ):
        sync = EventSync(
            client,
            SyncJob(output, since=2 * DAY),
            inbox,
            Following(settle=0, reconcile=10 * DAY, poll=0.05),
            clock=wall,
            on_cycle=cycles.append,
            on_taken=takes.append,
        )
        put: dict[Key, float] = {}

        async def timed_put(ended: MeetingEnded) -> None:
            await sync.put(ended)
            put.setdefault((ended.meeting_no, ended.start_time), time.monotonic())

        listener = LongConnection(
            base_url=emu.base_url, app_id=emu.app_id, app_secret=emu.app_secret, on_ended=timed_put
        )
        tasks = [asyncio.create_task(sync.run()), asyncio.create_task(listener.run())]
        try:
            t0 = time.monotonic()
            await _until(
                lambda: bool(cycles) and bool(emu.event_router.connections), 120, "backfill"
            )
            backfill_s = time.monotonic() - t0
            await asyncio.sleep(1.2 * rate.period)  # the backfill's requests leave the window
            served.run(_advance(wall, start, load), timeout=timeout)
            await _until(lambda: wanted <= committed.keys(), timeout, "every meeting committed")
            await asyncio.sleep(0.2)  # anything fetched twice shows in the log
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        records = list(emu.requests)  # before the request timing below
        small = next(q for q in emu.ending if len(emu.participants(q)) <= PAGE_SIZE)
        request_s = await _one_request(client, small)
    first_pages: dict[Key, int] = {}
    asked: dict[Key, float] = {}
    for r in records:
        if "participant_list" in r.path and r.status == 200 and "page_token" not in r.params:
            key = (r.params["meeting_no"], int(r.params["meeting_start_time"]))
            first_pages[key] = first_pages.get(key, 0) + 1
            asked.setdefault(key, r.time)
    expected = {(q.meeting_no, q.meeting_start_time): len(emu.participants(q)) for q in emu.ending}
    return RunResult(
        sent=sent,
        committed=committed,
        announced=[(e.meeting_no, e.start_time) for e in emu.events.announced],
        pages={k: max(1, math.ceil(n / PAGE_SIZE)) for k, n in expected.items()},
        expected_rows=expected,
        held_rows=await _held_rows(url, schema),
        rate_limited=sum(1 for r in records if r.status == 429),
        requests=len(records),
        first_pages=first_pages,
        request_s=request_s,
        put=put,
        asked=asked,
        takes=takes,
        backfill_s=backfill_s,
    )


async def _one_request(client: VCClient, query: MeetingQuery, n: int = 15) -> float:
    """The median client-side time of a one-page participant_list request (paced by the
    limiter: each is timed from its send, after the wait)."""
    times: list[float] = []
    interval_s = (client.rate_limit.period / client.rate_limit.requests) if client.rate_limit else 0
    for _ in range(n):
        await asyncio.sleep(1.5 * interval_s)  # no wait in the limiter
        t0 = time.monotonic()
        await client.participant_list(query, page_size=PAGE_SIZE)
        times.append(time.monotonic() - t0)
    times.sort()
    return times[len(times) // 2]
