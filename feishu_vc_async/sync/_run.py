"""A database kept current: backfill, then a cycle every ``interval``.

Each cycle is a range export into the sync's tables::

    list meetings that ended, by start, from (watermark - longest meeting - overlap) to now
        ──▶ skip those already in the tables (and those ended before the floor)
        ──▶ fetch the rest, each meeting's rows and mark committed together
        ──▶ the watermark moves to the cycle's start once every meeting is in

Everything a sync knows is in the database: the rows, the meetings done, and its
:class:`~._job.SyncState` (a note beside the export progress). So a restart after
``kill -9`` lists again from the watermark, skips what was committed and fetches the
rest: every meeting exactly once. The output's lock is held for the whole sync: a
second sync on the same tables is refused, naming the first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from ..client import VCClient
from ..export import ExportJob, ExportRun, MeetingRange, export
from ..export._run import Watch
from ..meetings import MeetingListQuery
from ..models import MeetingQuery, MeetingStatus
from ._job import SyncJob, SyncState
from ._state import cycle_start, end_cycle, load_state

__all__ = ["Cycle", "Sync"]


@dataclass(slots=True)
class Cycle:
    """One cycle: the range it listed, how many meetings it listed and how many it
    fetched (``run``: the export that fetched them), and the sync's state after it."""

    number: int
    listed_from: int
    listed_to: int
    listed: int
    run: ExportRun
    state: SyncState
    seconds: float

    @property
    def new(self) -> int:
        """Meetings fetched (or given up) by this cycle."""
        return self.run.ledger.known

    @property
    def rows(self) -> int:
        return self.run.ledger.rows_this_run

    @property
    def requests(self) -> int:
        progress = self.run.progress
        fetches = 0 if progress is None else progress.requests
        return fetches + self.run.listing_requests

    @property
    def caught_up(self) -> bool:
        """Every meeting listed is in the tables: the watermark moved."""
        return self.state.watermark == self.listed_to


class Sync:
    """Runs ``job`` with ``client`` (open; a tenant view for a store app's tenant).

    ``clock``: the wall clock (unix seconds) that says what "now" is; ``sleep``: waits
    between cycles (both replaceable in tests). ``watch``: held around each cycle's
    export (a progress display); ``on_cycle``: told of each cycle as it ends.
    """

    def __init__(
        self,
        client: VCClient,
        job: SyncJob,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        watch: Watch | None = None,
        on_cycle: Callable[[Cycle], None] | None = None,
    ) -> None:
        self.client = client
        self.job = job
        self._clock = clock
        self._sleep = sleep
        self._watch = watch
        self._on_cycle = on_cycle

    async def run(self, *, once: bool = False) -> Cycle:
        """Cycle until cancelled (``once``: one cycle, which catches up to now); returns
        the last cycle. Raises the export's typed errors (``OutputInUseError`` when
        another sync holds the tables), and stops at a cycle whose run was stopped
        (``cycle.run.fatal``)."""
        async with self.job.output.lock():
            while True:
                started = self._clock()
                cycle = await self.cycle()
                if self._on_cycle is not None:
                    self._on_cycle(cycle)
                if once or cycle.run.fatal is not None:
                    return cycle
                await self._sleep(max(0.0, self.job.interval - (self._clock() - started)))

    async def cycle(self) -> Cycle:
        """One cycle (the output locked): list, skip what is held, fetch the rest."""
        job, output = self.job, self.job.output
        begun = self._clock()
        now = int(begun)
        state = await load_state(output, job.since, now)
        start = cycle_start(state, job.overlap)
        held = await output.meetings_held(start)
        listed = 0

        def skip(query: MeetingQuery) -> bool:
            nonlocal listed
            listed += 1
            key = (query.meeting_no, query.meeting_start_time)
            return key in held or query.meeting_end_time < state.floor

        filters = job.filters or MeetingListQuery(start_time=start, end_time=now)
        wanted = msgspec.structs.replace(
            filters, start_time=start, end_time=now, meeting_status=MeetingStatus.ENDED
        )
        run = await export(
            self.client,
            ExportJob(
                MeetingRange(wanted),
                output,
                mode="overwrite",  # what is done is in the tables; a cycle's progress is not
                page_size=job.page_size,
                concurrency=job.concurrency,
                commit_interval=job.commit_interval,
                skip=skip,
            ),
            watch=self._watch,
        )
        await end_cycle(output, state, now, run.complete)
        return Cycle(state.cycles, start, now, listed, run, state, self._clock() - begun)
