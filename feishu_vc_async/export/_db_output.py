"""An export into a database: the :class:`~._output.Output` protocol over a transaction.

The protocol's promise (``_output``) is kept by the database itself: a transaction is
open from the first row written after a commit to the next :meth:`DatabaseOutput.commit`,
which writes the meetings' rows, their marks in the meetings table and the export's
progress, then commits. A crash at any instant rolls back to the last commit, which
counts exactly the meetings it holds.

The part that differs per database is a :class:`Store` (``_postgres``, ``_sqlite``): it
connects, checks and creates the tables, locks, and runs the statements; everything
else (what is written when, the progress, replacing a meeting written before) is here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import msgspec

from ..meetings import Meeting
from ..models import MeetingQuery, Participant
from ._db_tables import meeting_record, participant_records
from ._errors import CheckpointError
from ._failures import FailureRecord
from ._state import ExportState

__all__ = ["DatabaseOutput", "MeetingKey", "Store"]

MeetingKey = tuple[str, str, int]  # tenant_key, meeting_no, meeting_start_time

_STATE_ENCODER = msgspec.msgpack.Encoder()
_STATE_DECODER = msgspec.msgpack.Decoder(ExportState)
_FAILURES_DECODER = msgspec.msgpack.Decoder(list[FailureRecord])

# Participant rows sent to the database at once (a COPY, an executemany): large enough
# to make each round trip cheap, small enough to keep memory flat (three batches at most,
# for PostgreSQL: one being written, one waiting, the next being gathered). A batch is
# the pages themselves; their records are made as the store sends them (a COPY streams
# records made just before, which die young: held in a list of thousands, they cost the
# garbage collector and the caches a quarter more than the COPY itself).
BATCH_ROWS = 5_000


class Store(Protocol):
    """One database's statements, for :class:`DatabaseOutput`. Every method raises
    ``DatabaseOutputError`` (``_db_errors``) for what the database refuses or loses."""

    where: str
    # A timestamp column's value of a platform time string, as the store sends it.
    instant: Callable[[str | None], Any]

    def lock(self, tenant_key: str, name: str) -> AbstractAsyncContextManager[None]:
        """Connect, check (and create) the tables, and hold the export's lock
        (``OutputInUseError`` naming the holder) until the block ends; disconnect."""
        ...

    async def load(self, tenant_key: str, name: str) -> tuple[bytes | None, bytes | None]:
        """The saved state and failures of export ``name`` of the tenant, if any."""
        ...

    async def meeting_keys(self, tenant_key: str, start_from: int) -> set[tuple[str, int]]:
        """(meeting_no, meeting_start_time) of the tenant's meetings whose participants
        are in the tables, that start at ``start_from`` or later."""
        ...

    async def tenant_keys(self) -> set[str]:
        """Every tenant the tables know: of a meeting in them, or of an event in the
        inbox (if there is one)."""
        ...

    async def put_listed(self, meetings: Sequence[tuple[Any, ...]]) -> None:
        """Upsert ``meetings`` (listed, not exported: an exported meeting keeps its
        participant count) in a transaction of their own."""
        ...

    async def drop(self, tenant_key: str, name: str) -> None:
        """Delete the progress row of ``name`` of the tenant, if any, in a transaction of
        its own."""
        ...

    async def begin(self) -> None:
        """Open a transaction (if none is open)."""
        ...

    async def replace(self, cleared: Sequence[MeetingKey], rows: Iterable[tuple[Any, ...]]) -> None:
        """In the open transaction: delete the participant rows of ``cleared`` (meetings
        about to be written again), then insert ``rows`` (made as they are read). A
        store may return before it is done (PostgreSQL's writes on while the caller
        gathers the next batch): its error then comes from its next call."""
        ...

    async def commit(
        self,
        meetings: Sequence[tuple[Any, ...]],
        progress: tuple[str, str, bytes, bytes | None],
    ) -> None:
        """Upsert ``meetings`` and the progress row (tenant, name, state, failures: None
        keeps the saved ones), and commit the open transaction."""
        ...

    async def rollback(self) -> None:
        """Drop the open transaction, if any (the connection may be gone)."""
        ...


class DatabaseOutput:
    """An :class:`~._output.Output` into a database's tables (``_db_tables``).

    ``tenant_key``: whose meetings these are (a store app's tenant; ``""`` for an app of
    one tenant): part of every key, so tenants share the tables. ``name``: which export's
    progress this is (a database may hold several). A rerun continues the saved export
    by default (``continues_by_default``): the progress lives with the rows.
    """

    continues_by_default = True

    def __init__(
        self, store: Store, *, tenant_key: str = "", name: str = "export", redact_pii: bool = False
    ) -> None:
        self._store = store
        self.tenant_key = tenant_key
        self.name = name
        self._redact = redact_pii
        self._cleared: set[MeetingKey] = set()  # meetings replaced in the open transaction
        self._to_clear: list[MeetingKey] = []
        self._batch = _Batch()
        self._meetings: list[tuple[Any, ...]] = []
        self._failures: bytes | None = None  # to save with the next commit
        self._loaded_failures: bytes | None = None
        self._held = 0  # lock() depth
        self._broken = False  # a meeting's write failed: nothing more is committed
        # The ledger calls from two tasks (discovery records a meeting found while the
        # fan-out's meeting is being written): one call at a time, so a commit never
        # lands a meeting in part, nor two transactions begin at once. (asyncio's lock:
        # taken free, it costs no turn of the event loop, where anyio's yields one per
        # meeting written; write() checks for a cancellation as anyio's would.)
        self._busy = asyncio.Lock()

    @property
    def where(self) -> str:
        return self._store.where

    @property
    def progress_where(self) -> str:
        return f"the progress in {self._store.where}"

    @property
    def shape(self) -> tuple[str, ...]:
        return ("database", f"tenant_key={self.tenant_key}", f"redact_pii={self._redact}")

    @property
    def redact_pii(self) -> bool:
        return self._redact

    @contextlib.asynccontextmanager
    async def _settled(self) -> AsyncIterator[None]:
        """One call at a time, carried through even when cancelled: a commit, a rollback
        or a note is a few statements, and a run stopped by Ctrl-C or SIGTERM must still
        land the meetings it has whole (and let go of the transaction)."""
        with anyio.CancelScope(shield=True):
            async with self._busy:
                yield

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """Held for a run; re-entrant, so that a sync holds it across the exports of its
        cycles (and the connection with it)."""
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        async with self._store.lock(self.tenant_key, self.name):
            self._held = 1
            try:
                yield
            finally:
                self._held = 0

    # --- what a sync keeps beside its rows ---------------------------------------------

    async def meetings_held(self, start_from: int) -> set[tuple[str, int]]:
        """(meeting_no, meeting_start_time) of this tenant's meetings in the tables that
        start at ``start_from`` or later (while locked)."""
        return await self._store.meeting_keys(self.tenant_key, start_from)

    async def tenants_seen(self) -> set[str]:
        """The tenants the tables know, of every tenant: a meeting exported or listed,
        an event waiting in the inbox (while locked). A store app's "every tenant"."""
        return await self._store.tenant_keys()

    async def put_listed(self, listed: Sequence[tuple[MeetingQuery, Meeting]]) -> int:
        """Keep the meetings a listing found (``feishu-vc meetings``) in the meetings
        table, their participants not exported (``participant_rows`` empty; a meeting
        exported before keeps its count); while locked. Returns how many."""
        records = [
            meeting_record(self.tenant_key, query, meeting, None, redact_pii=self._redact)
            for query, meeting in listed
        ]
        async with self._settled():
            await self._store.put_listed(records)
        return len(records)

    async def load_note(self, name: str) -> bytes | None:
        """What :meth:`save_note` last kept under ``name`` (while locked)."""
        note, _ = await self._store.load(self.tenant_key, name)
        return note

    async def save_note(self, name: str, note: bytes) -> None:
        """Keep ``note`` under ``name`` beside the rows, durably (while locked, between
        two exports: it commits a transaction of its own)."""
        async with self._settled():
            await self._store.begin()
            await self._store.commit([], (self.tenant_key, name, note, None))

    async def drop_note(self, name: str) -> None:
        """Forget what :meth:`save_note` kept under ``name`` (while locked, between two
        exports): a note of one cycle's window, read once, need not stay."""
        async with self._settled():
            await self._store.drop(self.tenant_key, name)

    async def load(self) -> ExportState | None:
        state, failures = await self._store.load(self.tenant_key, self.name)
        self._loaded_failures = failures
        if state is None:
            return None
        try:
            return _STATE_DECODER.decode(state)
        except msgspec.DecodeError as exc:
            raise CheckpointError(self.where, f"holds a damaged progress row: {exc}") from None

    async def occupied(self) -> bool:
        # Rows of other meetings never conflict with this export's: a meeting written
        # again replaces its own rows, and nothing else.
        return False

    async def start(self, state: ExportState, *, fresh: bool) -> None:
        self._broken = False
        if fresh:
            self._loaded_failures = None
            self._failures = msgspec.msgpack.encode([])

    async def reopen_final(self, state: ExportState) -> None:
        """Nothing to reopen: the tables are as writable after a final export as before."""

    # --- rows and progress -------------------------------------------------------------

    async def write(
        self,
        query: MeetingQuery,
        pages: Iterable[Sequence[Participant]],
        meeting: Meeting | None,
    ) -> int:
        await anyio.lowlevel.checkpoint_if_cancelled()  # a cancelled run starts no meeting
        async with self._busy:
            # A meeting goes in whole: a cancellation (Ctrl-C, SIGTERM) waits for the
            # meeting in hand (a page of memory's worth of statements); any other failure
            # on the way leaves the open transaction to be dropped, never committed.
            written = 0
            with anyio.CancelScope(shield=True):
                try:
                    written = await self._write(query, pages, meeting)
                except BaseException:
                    self._broken = True
                    raise
            return written

    async def _write(
        self,
        query: MeetingQuery,
        pages: Iterable[Sequence[Participant]],
        meeting: Meeting | None,
    ) -> int:
        store = self._store
        await store.begin()
        key: MeetingKey = (self.tenant_key, query.meeting_no, query.meeting_start_time)
        if key not in self._cleared:
            self._cleared.add(key)
            self._to_clear.append(key)
        written = 0
        for page in pages:
            self._batch.add(query, page, written)
            written += len(page)
            if self._batch.rows >= BATCH_ROWS:
                await self._flush()
        self._meetings.append(
            meeting_record(self.tenant_key, query, meeting, written, redact_pii=self._redact)
        )
        return written

    async def _flush(self) -> None:
        batch, cleared = self._batch, self._to_clear
        self._batch, self._to_clear = _Batch(), []
        records = batch.records(self.tenant_key, self._redact, self._store.instant)
        await self._store.replace(cleared, records)

    async def commit(self, state: ExportState) -> None:
        async with self._settled():
            await self._commit(state)

    async def _commit(self, state: ExportState) -> None:
        store = self._store
        if self._broken:
            # A meeting was cut short in the open transaction: it and everything since
            # the last commit are dropped; the saved progress still says so.
            self._batch, self._to_clear, self._meetings = _Batch(), [], []
            self._cleared.clear()
            await store.rollback()
            return
        await store.begin()
        if self._batch.rows or self._to_clear:
            await self._flush()
        progress = (self.tenant_key, self.name, _STATE_ENCODER.encode(state), self._failures)
        meetings, self._meetings = self._meetings, []
        await store.commit(meetings, progress)
        self._cleared.clear()
        if self._failures is not None:
            self._loaded_failures, self._failures = self._failures, None

    async def finish(self, state: ExportState) -> None:
        await self.commit(state)

    async def close(self) -> None:
        async with self._settled():
            self._batch, self._to_clear, self._meetings = _Batch(), [], []
            self._cleared.clear()
            await self._store.rollback()

    async def earlier_failures(self) -> list[FailureRecord]:
        saved = self._failures if self._failures is not None else self._loaded_failures
        return [] if not saved else _FAILURES_DECODER.decode(saved)

    async def record_failures(self, records: Sequence[FailureRecord]) -> None:
        # Kept with the progress row; saved at once in a transaction of their own (the
        # run has ended: its rows are committed or rolled back already).
        async with self._settled():
            self._failures = msgspec.msgpack.encode(list(records))
            await self._store.begin()
            saved, _ = await self._store.load(self.tenant_key, self.name)
            if saved is None:
                await self._store.rollback()
                return
            await self._store.commit([], (self.tenant_key, self.name, saved, self._failures))
            self._loaded_failures, self._failures = self._failures, None


class _Batch:
    """Pages gathered for one write, their records made only as the store reads them."""

    __slots__ = ("pages", "rows")

    def __init__(self) -> None:
        self.pages: list[tuple[MeetingQuery, Sequence[Participant], int]] = []
        self.rows = 0

    def add(self, query: MeetingQuery, page: Sequence[Participant], first_row: int) -> None:
        self.pages.append((query, page, first_row))
        self.rows += len(page)

    def records(
        self, tenant_key: str, redact_pii: bool, instant: Callable[[str | None], Any]
    ) -> Iterator[tuple[Any, ...]]:
        for query, page, first_row in self.pages:
            yield from participant_records(
                tenant_key, query, page, first_row=first_row, redact_pii=redact_pii, instant=instant
            )
