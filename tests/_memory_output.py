"""An export output with transactions, kept in memory: what a database output is to the
export's protocol (``feishu_vc_async.export.Output``), without a database.

A :class:`MemoryStore` is the "database": what survives a crash is only what a commit
made durable. :class:`MemoryOutput` is handed a meeting's rows once its last page
arrived, holds them until the next commit, and a commit lands them and the export's
state together, as one transaction would.
Every commit checks, as a reader of the database would see it, that each meeting it
holds is whole (all of its rows, none twice).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import anyio
import msgspec

from feishu_vc_async.export import ExportState, FailureRecord, RowBuilder
from feishu_vc_async.meetings import Meeting
from feishu_vc_async.models import MeetingQuery, Participant

__all__ = ["MemoryOutput", "MemoryStore"]

_STATE = msgspec.json.Decoder(ExportState)


class MemoryStore:
    """What is durable: rows by meeting key, the export's state, the failures."""

    def __init__(self, truth: Mapping[str, int], *, crash_after: int | None = None) -> None:
        self.truth = dict(truth)  # meeting key → how many rows it has
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.state: bytes | None = None
        self.failures: list[FailureRecord] = []
        self.commits = 0
        self.partial_seen: list[str] = []  # meetings a commit showed in part (a bug)
        self.tokens_seen = 0  # commits whose state named a meeting's next page (a bug)
        # The process "dies" at this commit: nothing written after it lands (kill -9).
        self.crash_after = crash_after
        self.crashed = anyio.Event()

    def land(self, rows: Mapping[str, list[dict[str, Any]]], state: ExportState) -> None:
        """One transaction, unless the process is already dead."""
        if self.crashed.is_set():
            return
        self.rows.update(rows)
        self.state = msgspec.json.encode(state)
        self.commits += 1
        self.tokens_seen += bool(state.resume.next_tokens)
        self.check_whole()
        if self.commits == self.crash_after:
            self.crashed.set()

    def check_whole(self) -> None:
        for key, rows in self.rows.items():
            if len(rows) != self.truth.get(key, -1):
                self.partial_seen.append(key)


class MemoryOutput:
    redact_pii = False
    shape = ("memory",)
    progress_where = "the memory store"
    continues_by_default = False

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.where = "memory"
        self._builder = RowBuilder()
        self._pending: dict[str, list[dict[str, Any]]] = {}

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        yield

    async def load(self) -> ExportState | None:
        return None if self.store.state is None else _STATE.decode(self.store.state)

    async def occupied(self) -> bool:
        return bool(self.store.rows)

    async def start(self, state: ExportState, *, fresh: bool) -> None:
        if fresh:
            self.store.rows.clear()
            self.store.state = None

    async def reopen_final(self, state: ExportState) -> None:
        pass

    async def write(
        self,
        query: MeetingQuery,
        pages: Iterable[Sequence[Participant]],
        meeting: Meeting | None,
    ) -> int:
        rows = [row for page in pages for row in self._builder.rows(query, page, meeting)]
        self._pending[query.key] = rows  # a meeting read again replaces, never adds
        return len(rows)

    async def commit(self, state: ExportState) -> None:
        self.store.land(self._pending, state)
        self._pending = {}

    async def finish(self, state: ExportState) -> None:
        await self.commit(state)

    async def close(self) -> None:
        self._pending.clear()  # what a crash loses: nothing committed

    async def earlier_failures(self) -> list[FailureRecord]:
        return list(self.store.failures)

    async def record_failures(self, records: Sequence[FailureRecord]) -> None:
        self.store.failures = list(records)
