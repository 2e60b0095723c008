"""The one protocol every output of an export implements: files now, a database next.

An export hands an :class:`Output` its rows and its progress (an :class:`ExportState`);
the rules of when to start afresh, continue or refuse, and what the progress says, are
the ledger's (``_ledger``), and they know nothing of formats or storage.

The contract, which makes a resume exact whatever instant the process dies at
(``kill -9`` included):

* :meth:`Output.write` hands over one meeting's rows, all of them, a page at a time:
  the ledger holds a meeting's pages until its last one has arrived (in memory, or in
  a spool file past a budget), so an output never holds a meeting in part, and a
  meeting that fails on the way (a page that cannot be had, a server whose paging
  loops) leaves nothing behind; the next run reads it from its first page. They need
  not be durable yet.
* :meth:`Output.commit` makes every row written so far *and* the state durable
  together: after it returns, both survive; if the process dies at any line before it
  returns, what :meth:`Output.load` finds next time is the previous commit's state and
  exactly the rows it counts. A database keeps this promise with a transaction. Files
  cannot, so they keep it with an order: the data is fsynced first, then the state is
  written to a temporary file, fsynced and renamed over the old one (the checkpoint),
  and it records the data's committed length and a hash of its tail; :meth:`Output.start`
  of a later run cuts the data back to that length after checking the hash.
* The state never records a meeting in part (no page token of a meeting in progress):
  a meeting is done (its rows in the output) or not asked yet.
* Nothing is touched before the first :meth:`Output.start`, so a run that stops before
  its first row (refused credentials, say) leaves the output as it was.
* :meth:`Output.finish` makes a finished export's output final (a Parquet file built
  from its journal); its state is committed with ``finalized`` set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ..meetings import Meeting
from ..models import MeetingQuery, Participant
from ._failures import FailureRecord
from ._state import ExportState

__all__ = ["Output"]


class Output(Protocol):
    """Where an export's rows and progress land (see the module docstring's contract)."""

    @property
    def where(self) -> str:
        """The output in messages: a path, or a database without its password."""
        ...

    @property
    def progress_where(self) -> str:
        """Where the progress is kept, in messages ("the checkpoint out.jsonl.checkpoint.json",
        "the progress in postgresql://..."): a stopped run says it is consistent there."""
        ...

    @property
    def continues_by_default(self) -> bool:
        """A run continues the saved export without being told (``mode="new"`` acts as
        ``"resume"``): a database, whose progress lives with its rows. A file is refused
        instead, so that a new export never appends to an old file by mistake."""
        ...

    @property
    def shape(self) -> tuple[str, ...]:
        """What shapes the rows (format, columns, redaction...): part of the export's
        fingerprint, so a resume with other settings is refused."""
        ...

    @property
    def redact_pii(self) -> bool:
        """Personal data is blanked in the rows, and kept out of the saved state."""
        ...

    def lock(self) -> AbstractAsyncContextManager[None]:
        """Held for the whole run: one writer at a time (``OutputInUseError``)."""
        ...

    async def load(self) -> ExportState | None:
        """The last committed state, or ``None`` when there is none (``CheckpointError``
        when it cannot be read)."""
        ...

    async def occupied(self) -> bool:
        """Whether the output holds something (rows, a file) whatever its state says."""
        ...

    async def start(self, state: ExportState, *, fresh: bool) -> None:
        """Prepare to write. ``fresh``: discard whatever is there and begin empty.
        Otherwise continue ``state`` (the loaded one): check that the output still holds
        what it vouches for (``OutputChangedError``) and drop any row written after it."""
        ...

    async def reopen_final(self, state: ExportState) -> None:
        """Make a final output appendable again (its failed meetings are asked again)."""
        ...

    async def write(
        self,
        query: MeetingQuery,
        pages: Iterable[Sequence[Participant]],
        meeting: Meeting | None,
    ) -> int:
        """Every row of ``query``: its participants, all its pages in order, read a page
        at a time so that a meeting of any size costs a page of memory (``meeting``:
        what meeting_list said of it, if known); returns how many rows were written.
        Writing a meeting the output already holds (an earlier run wrote it but died
        before its commit) replaces those rows where the output can tell them apart (a
        database by its keys); a file never holds them (they were past its commit)."""
        ...

    async def commit(self, state: ExportState) -> None:
        """Everything written so far and ``state``, durable together."""
        ...

    async def finish(self, state: ExportState) -> None:
        """The run ended normally: commit, and build the output where it is built at the
        end. ``state.finalized`` is set by the caller once everything is done."""
        ...

    async def close(self) -> None:
        """Release what is open (interrupted or done); builds nothing."""
        ...

    async def earlier_failures(self) -> list[FailureRecord]:
        """The failures :meth:`record_failures` last kept (to describe meetings given up
        by earlier runs)."""
        ...

    async def record_failures(self, records: Sequence[FailureRecord]) -> None:
        """Keep the meetings not exported, with their reasons (none: forget them)."""
        ...
