"""The checkpoint rules of an export, the same for every output.

The :class:`Ledger` keeps the export's :class:`~._state.ExportState` and drives an
:class:`~._output.Output` by its contract: it decides whether a run starts afresh,
continues or is refused (:meth:`Ledger.open`), hands the output a meeting's rows once
the fan-out has delivered its last page (a meeting that fails on the way leaves nothing
behind), advances the state past it, and commits both now and then
(:meth:`Ledger.commit`: at most every ``commit_interval`` seconds, and never taking more
than ~5 % of the run). It knows nothing of formats or storage.

The export is *final* when every meeting is done or given up for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import msgspec

from ..discovery import DiscoveryPosition
from ..fanout import MeetingFailure, PageItem, Resume
from ..meetings import Meeting, MeetingListQuery
from ..models import MeetingQuery
from ._errors import (
    CheckpointMismatchError,
    OutputExistsError,
    UnfinishedExportError,
)
from ._failures import FailureRecord
from ._held import HeldPages
from ._output import Output
from ._state import DiscoveryState, ExportState, Found, fingerprint

__all__ = ["HELD_ROWS_DEFAULT", "Ledger", "OpenMode"]

# Rows of meetings in flight held in memory (~1.6 KB each as objects) before spooling.
HELD_ROWS_DEFAULT = 20_000

# What to do with what an earlier run left: "new" refuses to discard an unfinished
# export or an output that is not this export's; "resume" continues the export (afresh
# when there is none); "retry_failed" too, and asks again for meetings given up for good
# (a final export is reopened); "overwrite" discards whatever is there.
OpenMode = Literal["new", "resume", "retry_failed", "overwrite"]


class Ledger:
    """One export's progress over one output.

    ``identity`` identifies the meetings (the queries' keys, or a range export's
    options as typed), ``discovery`` is a range export's range to list (its meetings
    are added as they are found, :meth:`found`), ``meetings`` a given list's.
    ``held_rows`` and ``spool_dir``: the pages of meetings in flight, held in memory up
    to that many rows and past it in spool files there (see ``_held``).
    """

    def __init__(
        self,
        output: Output,
        *,
        identity: Sequence[str],
        page_size: int,
        discovery: MeetingListQuery | None = None,
        meetings: Sequence[MeetingQuery] = (),
        commit_interval: float = 0.5,
        held_rows: int = HELD_ROWS_DEFAULT,
        spool_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.output = output
        self._fingerprint = fingerprint(identity, shape=output.shape, page_size=page_size)
        self._discovery_range = discovery
        # key → meeting number: the meetings of this export (a range export's grow as
        # they are found); key → what meeting_list said of it (the meeting columns).
        self._numbers = {q.key: q.meeting_no for q in meetings}
        self._meetings: dict[str, Meeting] = {}
        # The pages of meetings not read to the end yet.
        self.held = HeldPages(memory_rows=held_rows, spool_dir=spool_dir)
        self._state: ExportState | None = None
        self._started = False  # something of this export is on the output
        self._dirty = False
        self.commit_interval = commit_interval
        self._clock = clock
        self._last_commit = 0.0
        self._commit_cost = 0.0  # seconds the last commit took
        self.rows_this_run = 0
        self.pages_this_run = 0

    # --- what it knows -----------------------------------------------------------------

    @property
    def state(self) -> ExportState:
        assert self._state is not None, "Ledger.open() first"
        return self._state

    @property
    def resume(self) -> Resume:
        return self.state.resume

    @property
    def discovery(self) -> DiscoveryState | None:
        """A range export's discovery: its range, position and the meetings found."""
        return None if self._state is None else self._state.discovery

    @property
    def finalized(self) -> bool:
        return self._state is not None and self._state.finalized

    @property
    def started(self) -> bool:
        """Something of this export is on the output (a resumed export, or a fresh one
        that has recorded its first page, failure or meeting found)."""
        return self._started

    @property
    def known(self) -> int:
        """Meetings of this export known so far (a range export's: found so far)."""
        return len(self._numbers)

    @property
    def completed(self) -> int:
        """Meetings of this export finished, by this run or earlier ones."""
        if self._state is None:
            return 0
        return len(self._state.resume.completed & self._numbers.keys())

    @property
    def given_up(self) -> int:
        """Meetings of this export given up for good, by this run or earlier ones."""
        if self._state is None:
            return 0
        return len(self._state.resume.failed.keys() & self._numbers.keys())

    def described(self, key: str) -> Meeting | None:
        """What meeting_list said of the meeting ``key``, where a range export found it."""
        return self._meetings.get(key)

    @property
    def rows_total(self) -> int:
        """Rows in the output, earlier runs included."""
        return 0 if self._state is None else self._state.rows

    # --- opening -----------------------------------------------------------------------

    async def open(self, mode: OpenMode) -> Resume:
        """Continue the saved export or plan a fresh start (nothing is touched before the
        first record), and return the resume state the fan-out starts from."""
        output = self.output
        state = None if mode == "overwrite" else await output.load()
        ours = state is not None and state.fingerprint == self._fingerprint
        # An output that continues by default (a database) continues its own export, and
        # refuses to drop another's unfinished one; another's finished export is no bar.
        continuing = mode in ("resume", "retry_failed") or (
            mode == "new"
            and output.continues_by_default
            and state is not None
            and (ours or not state.finalized)
        )
        if state is not None and not continuing and not state.finalized:
            raise UnfinishedExportError(output.where, "holds an unfinished export")
        if continuing and state is not None:
            if not ours:
                raise CheckpointMismatchError(
                    output.where,
                    "holds the progress of another export (other meetings or options: "
                    "format, fields, redaction, page size)",
                )
            await self._continue(state, retry_failed=mode == "retry_failed")
            return state.resume
        if mode != "overwrite" and not ours and await output.occupied():
            raise OutputExistsError(
                output.where,
                "exists and no saved progress says it is this export's output"
                if state is None
                else "holds another finished export (other meetings or options)",
            )
        discovery = self._discovery_range
        self._state = ExportState(
            fingerprint=self._fingerprint,
            discovery=None if discovery is None else DiscoveryState(range=discovery),
        )
        return self._state.resume

    async def _continue(self, state: ExportState, *, retry_failed: bool) -> None:
        self._state = state
        self._started = True
        for found in state.discovery.found if state.discovery is not None else ():
            self._know(found)
        if state.finalized and retry_failed and state.resume.failed:
            await self.output.reopen_final(state)
            state.finalized = False
            self._dirty = True
            await self.commit()
        else:
            await self.output.start(state, fresh=False)

    async def _start(self) -> None:
        """A fresh export's first touch of the output, at its first record."""
        if self._started:
            return
        self._started = True
        await self.output.start(self.state, fresh=True)
        self._dirty = True
        await self.commit()

    # --- what the run delivers ---------------------------------------------------------

    async def page(self, item: PageItem) -> int:
        """Hold one page; at a meeting's last page, hand all its rows to the output and
        advance the state past the meeting. Returns the number of rows handed over."""
        state = self.state
        key = item.query.key
        if key in state.resume.completed:
            return 0  # a page of a finished meeting would be a duplicate
        if not item.is_last:
            self.held.add(key, item.participants)
            return 0
        pages, held = self.held.release(key, item.participants)
        await self._start()
        rows = await self.output.write(item.query, held, self._meetings.get(key))
        state.rows += rows
        state.pages += pages
        state.resume.record(item)
        self.rows_this_run += rows
        self.pages_this_run += pages
        self._dirty = True
        await self._commit_now_and_then()
        return rows

    async def failure(self, item: MeetingFailure) -> None:
        """A meeting failed: recorded in the state (given up for good, if its error is
        permanent; else asked again by the next run). Its pages so far are dropped with
        it: the next run that asks reads it from its first page."""
        self.held.drop(item.query.key)
        item = msgspec.structs.replace(item, next_page_token=None)
        await self._start()
        self.state.resume.record(item)
        self._dirty = True
        await self._commit_now_and_then()

    async def found(
        self, query: MeetingQuery, meeting: Meeting, position: DiscoveryPosition
    ) -> None:
        """A range export's discovery found ``meeting`` (read with ``query``) and stands
        at ``position``; recorded with the next commit. Under ``redact_pii`` the
        organizer's contact data is not kept."""
        discovery = self._range_discovery()
        if self.output.redact_pii:
            meeting = msgspec.structs.replace(meeting, employee_id=None, email=None, mobile=None)
        found = Found(query=query, meeting=meeting)
        await self._start()
        discovery.found.append(found)
        discovery.position = position
        self._know(found)
        self._dirty = True
        await self._commit_now_and_then()

    async def discovery_at(self, position: DiscoveryPosition) -> None:
        """Discovery moved on (through pages of meetings found before, or to its end)."""
        discovery = self._range_discovery()
        if position != discovery.position:
            discovery.position = position
            self._dirty = True
            if self._started:
                await self._commit_now_and_then()

    def _range_discovery(self) -> DiscoveryState:
        discovery = self.state.discovery
        assert discovery is not None, "a range export's ledger"
        return discovery

    def _know(self, found: Found) -> None:
        key = found.query.key
        self._numbers[key] = found.query.meeting_no
        self._meetings[key] = found.meeting

    # --- commits -----------------------------------------------------------------------

    async def _commit_now_and_then(self) -> None:
        # A state of 100k meetings is megabytes: commits are spaced so that they take at
        # most ~5 % of the time (commit_interval 0, in tests: after every record). Only
        # how much a crash makes the next run fetch again depends on this.
        gap = max(self.commit_interval, 20 * self._commit_cost) if self.commit_interval else 0.0
        if self._clock() - self._last_commit >= gap:
            await self.commit()

    async def commit(self) -> None:
        """Make everything handed over so far durable, with the state that counts it."""
        if not self._dirty or self._state is None or not self._started:
            return
        started = self._clock()
        await self.output.commit(self._state)
        self._dirty = False
        self._last_commit = self._clock()
        self._commit_cost = self._last_commit - started

    # --- the end -----------------------------------------------------------------------

    async def finish(self) -> None:
        """The run ended without being stopped: mark the export final when every meeting
        is done or given up for good, and have the output finish (and commit). Also after
        transient failures: the export then stays unfinished."""
        self.held.close()
        state = self._state
        if state is None or state.finalized:
            return
        await self._start()  # an export of no meetings still makes its (empty) output
        everything_known = state.discovery is None or state.discovery.position.done
        if everything_known and self.completed + self.given_up == len(self._numbers):
            state.finalized = True
        await self.output.finish(state)
        self._dirty = False

    async def abort(self) -> None:
        """Interrupted or stopped: keep what is consistent (commit), build nothing."""
        self.held.close()
        if self._state is None or not self._started:
            return
        try:
            await self.commit()
        finally:
            await self.output.close()

    async def record_failures(self, failures: Sequence[FailureRecord]) -> list[FailureRecord]:
        """Have the output keep :meth:`unexported` and return it."""
        if not self._started:
            return []  # nothing of this export on the output: earlier records stay
        records = await self.unexported(failures)
        await self.output.record_failures(records)
        return records

    async def unexported(self, failures: Sequence[FailureRecord]) -> list[FailureRecord]:
        """The meetings not exported: those earlier runs gave up for good and this one did
        not ask again (as the output's records describe them), then this run's."""
        this_run = {f.key for f in failures}
        given_up = {
            key: code
            for key, code in (self.state.resume.failed.items() if self._state else ())
            if key in self._numbers and key not in this_run
        }
        if not given_up:
            return list(failures)
        kept = {r.key: r for r in await self.output.earlier_failures() if r.key in given_up}
        earlier = [
            kept.get(key)
            or FailureRecord(
                meeting_no=self._numbers[key],
                key=key,
                error="given up by an earlier run",
                code=code or None,
                message="failed for good in an earlier run",
                log_id=None,
                http_status=None,
                pages_fetched=0,
                permanent=True,
            )
            for key, code in given_up.items()
        ]
        return [*earlier, *failures]
