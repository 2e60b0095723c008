"""A sync fed by events: each meeting told ended is fetched seconds after it ends.

::

    webhook / long connection ──▶ put(): the inbox, committed ──▶ acknowledged
    every moment an entry is due (``settle`` after it came) ──▶ fetch its meeting,
        rows and mark committed together ──▶ its inbox entries removed
    every ``reconcile`` ──▶ a range cycle (``Sync.cycle``): heals events never sent

Both paths key a meeting by (meeting_no, start) and skip what the tables hold, so a
meeting told twice, or told and also listed, is fetched once. The inbox lives in the
sync's database (``feishu_vc_inbox``): an event acknowledged and then lost to a crash is
taken by the next run. The first thing a run does is a range cycle: it backfills (the
first run) or catches up on what ended while no sync ran.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import msgspec

from .._constants import LOGGER_NAME
from .._validate import non_negative_seconds, positive_int, positive_seconds
from ..client import VCClient
from ..events import MeetingEnded
from ..export import ExportJob, ExportRun, export
from ..export._inbox import Inbox
from ..export._run import Watch
from ..models import MeetingQuery, MeetingStatus
from ._job import SyncJob
from ._run import Cycle, Sync

__all__ = ["EventSync", "Following", "Taken"]

logger = logging.getLogger(LOGGER_NAME + ".sync")


@dataclass(frozen=True, slots=True)
class Following:
    """How a sync follows events. ``settle``: seconds from an event's arrival to its
    meeting's fetch (the platform's rows settle just after the end); ``reconcile``:
    seconds between range cycles that heal lost events; ``poll``: seconds between looks
    at the inbox when nothing in this process wakes the sync (events put by another
    process); ``batch``: most meetings fetched in one go (events that come meanwhile wait
    for it: about what the rate limit allows in a few seconds)."""

    settle: float = 5.0
    reconcile: float = 3600.0
    poll: float = 1.0
    batch: int = 20

    def __post_init__(self) -> None:
        non_negative_seconds("settle", self.settle)
        positive_seconds("reconcile", self.reconcile)
        positive_seconds("poll", self.poll)
        positive_int("batch", self.batch)


@dataclass(slots=True)
class Taken:
    """Meetings taken from the inbox in one go: how many entries were due, how many
    meetings were fetched (``run``, if any) and how many were in the tables already."""

    due: int
    fetched: int
    held: int
    run: ExportRun | None
    seconds: float

    @property
    def rows(self) -> int:
        return 0 if self.run is None else self.run.ledger.rows_this_run


class EventSync:
    """Runs ``job`` with ``client``, taking meetings from ``inbox`` as events put them
    there (:meth:`put` is the ``on_ended`` of a webhook receiver or a long connection)
    and reconciling by range cycles. ``clock``: unix seconds, the inbox's time;
    ``on_cycle`` / ``on_taken``: told of each range cycle and each take."""

    def __init__(
        self,
        client: VCClient,
        job: SyncJob,
        inbox: Inbox,
        following: Following | None = None,
        *,
        clock: Callable[[], float] = time.time,
        watch: Watch | None = None,
        on_cycle: Callable[[Cycle], None] | None = None,
        on_taken: Callable[[Taken], None] | None = None,
    ) -> None:
        self.client, self.job, self.inbox = client, job, inbox
        self.following = following or Following()
        self._clock = clock
        self._watch = watch
        self._on_cycle, self._on_taken = on_cycle, on_taken
        self._wake = asyncio.Event()
        self._next_due = math.inf  # the earliest an event put here is due
        self._waiting: list[tuple[MeetingEnded, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None
        self._sync = Sync(client, job, clock=clock, watch=watch)

    async def put(self, ended: MeetingEnded) -> None:
        """Keep ``ended`` in the inbox (committed when this returns: acknowledge the
        event after) and wake the sync. A store app's event is kept under its tenant
        (routed by ``tenant_key``: the sync of that tenant on these tables takes it); an
        app of one tenant (the output's ``tenant_key`` empty) keeps every event as its
        own."""
        if not self.job.output.tenant_key:
            ended = _for_tenant(ended, "")
        # Group commit: the events put while one inbox write runs go in the next, together.
        loop = asyncio.get_running_loop()
        kept: asyncio.Future[None] = loop.create_future()
        kept.add_done_callback(_retrieved)  # a caller gone does not leave it unread
        self._waiting.append((ended, kept))
        if self._writing is None or self._writing.done():
            self._writing = loop.create_task(self._write_waiting())
        await asyncio.shield(kept)  # a caller gone still has its event written

    async def _write_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            received = int(self._clock())
            try:
                await self.inbox.put([ended for ended, _ in group], received)
            except Exception as exc:  # each caller's: its event is not acknowledged
                for _, kept in group:
                    if not kept.done():
                        kept.set_exception(exc)
                continue
            for _, kept in group:
                if not kept.done():
                    kept.set_result(None)
            self._next_due = min(self._next_due, received + self.following.settle)
            self._wake.set()

    async def run(self) -> None:
        """Follow until cancelled, or until a run stops on a fatal error (returns).
        Raises the export's typed errors (``OutputInUseError``: another sync)."""
        following = self.following
        async with self.job.output.lock():
            next_cycle = self._clock()
            while True:
                if self._clock() >= next_cycle:
                    cycle = await self._sync.cycle()
                    if self._on_cycle is not None:
                        self._on_cycle(cycle)
                    if cycle.run.fatal is not None:
                        return
                    next_cycle = self._clock() + following.reconcile
                taken = await self.take()
                if taken is not None and taken.run is not None and taken.run.fatal is not None:
                    return
                if taken is not None and taken.due >= following.batch:
                    continue  # more are due at once
                self._wake.clear()
                now = self._clock()
                if self._next_due <= now:
                    self._next_due = math.inf
                    continue
                wait = min(following.poll, next_cycle - now, self._next_due - now)
                with anyio.move_on_after(max(0.0, wait)):
                    await self._wake.wait()

    async def take(self) -> Taken | None:
        """Fetch the meetings due in the inbox (the output locked); ``None``: none due."""
        following, output = self.following, self.job.output
        begun = self._clock()
        up_to = math.floor(begun - following.settle)  # received_at + settle <= now
        due = await self.inbox.due(output.tenant_key, up_to, following.batch)
        if not due:
            return None
        queries: dict[tuple[str, int], MeetingQuery] = {}
        for _, _, number, start, end, _ in due:
            queries.setdefault((number, start), _query(number, start, end))
        held = await output.meetings_held(min(start for _, start in queries))
        wanted = [q for key, q in queries.items() if key not in held]
        run = None
        if wanted:
            job = self.job
            run = await export(
                self.client,
                ExportJob(
                    wanted,
                    output,
                    mode="overwrite",
                    page_size=job.page_size,
                    concurrency=job.concurrency,
                    commit_interval=0,  # each meeting committed as it is written: seconds count
                ),
                watch=self._watch,
            )
        done = await self._done(queries, run)
        await self.inbox.remove(output.tenant_key, done)
        taken = Taken(len(due), len(wanted), len(queries) - len(wanted), run, self._clock() - begun)
        if self._on_taken is not None:
            self._on_taken(taken)
        return taken

    async def _done(
        self, queries: dict[tuple[str, int], MeetingQuery], run: ExportRun | None
    ) -> list[tuple[str, int]]:
        """The meetings whose entries can go: written, or failed for good."""
        held = await self.job.output.meetings_held(min(start for _, start in queries))
        given_up = set() if run is None else {f.key for f in run.failures if f.permanent}
        return [k for k, q in queries.items() if k in held or q.key in given_up]


def _retrieved(kept: asyncio.Future[None]) -> None:
    if not kept.cancelled():
        kept.exception()


def _query(number: str, start: int, end: int) -> MeetingQuery:
    return MeetingQuery(
        meeting_no=number,
        meeting_start_time=start,
        meeting_end_time=end,
        meeting_status=MeetingStatus.ENDED,
    )


def _for_tenant(ended: MeetingEnded, tenant: str) -> MeetingEnded:
    return msgspec.structs.replace(ended, tenant_key=tenant)
