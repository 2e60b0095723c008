"""The pages of the meetings in flight: in memory up to a budget, then in spool files.

An output is handed a meeting's rows only once its last page has arrived (the contract
in ``_output``), so the pages of every meeting in flight wait here. As objects a row
costs about 1.6 KB: 128 meetings of 2,500 participants in flight held 560 MB. Past
``memory_rows`` rows held in all, the meeting holding the most in memory moves its pages
to a spool file of its own (msgpack frames in an anonymous temporary file: owner-only,
no name, gone when closed or when the process dies), and its later pages follow it
there. A meeting is handed over a page at a time (:meth:`HeldPages.release`), so
memory stays near the budget whatever the meetings' sizes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import msgspec

from .._validate import positive_int
from ..models import Participant

__all__ = ["HeldPages"]

_FRAME_LENGTH = 4  # bytes of the big-endian length before each page's msgpack
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Participant])


class _Held:
    __slots__ = ("memory", "memory_rows", "pages", "spool")

    def __init__(self) -> None:
        self.memory: list[Sequence[Participant]] = []
        self.memory_rows = 0
        self.pages = 0
        self.spool: IO[bytes] | None = None


class HeldPages:
    """The pages held per meeting key until the meeting's last page.

    ``memory_rows``: rows held in memory across all meetings before the largest holder
    moves to a spool file in ``spool_dir`` (the system's temporary directory when
    ``None``).
    """

    def __init__(self, *, memory_rows: int, spool_dir: Path | None = None) -> None:
        positive_int("memory_rows", memory_rows)
        self.memory_rows = memory_rows
        self._spool_dir = spool_dir
        self._held: dict[str, _Held] = {}
        self._in_memory = 0
        self.spilled_pages = 0  # pages that went to a spool file (for tests and logs)

    @property
    def rows_in_memory(self) -> int:
        return self._in_memory

    def add(self, key: str, participants: Sequence[Participant]) -> None:
        """Hold one page of the meeting ``key`` (not its last)."""
        held = self._held.setdefault(key, _Held())
        held.pages += 1
        if held.spool is not None:
            self._spill_page(held.spool, participants)
            return
        held.memory.append(participants)
        held.memory_rows += len(participants)
        self._in_memory += len(participants)
        while self._in_memory > self.memory_rows:
            self._spill(max(self._held.values(), key=lambda h: h.memory_rows))

    def release(
        self, key: str, last: Sequence[Participant]
    ) -> tuple[int, Iterator[Sequence[Participant]]]:
        """Stop holding ``key``: its number of pages (``last`` included) and its pages in
        order, read back a page at a time, ending with ``last``."""
        held = self._held.pop(key, None) or _Held()
        self._in_memory -= held.memory_rows
        return held.pages + 1, self._pages(held, last)

    def drop(self, key: str) -> None:
        """Forget the pages of ``key`` (its meeting failed)."""
        held = self._held.pop(key, None)
        if held is not None:
            self._in_memory -= held.memory_rows
            if held.spool is not None:
                held.spool.close()

    def close(self) -> None:
        """Forget everything held (the run ended)."""
        for key in list(self._held):
            self.drop(key)

    def _spill(self, held: _Held) -> None:
        if held.spool is None:
            # Rows of personal data: an anonymous file (O_TMPFILE where there is one),
            # mode 0600, that leaves nothing behind after a crash.
            # Closed by release() or drop(), whoever ends the meeting.
            held.spool = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115
        for page in held.memory:
            self._spill_page(held.spool, page)
        self._in_memory -= held.memory_rows
        held.memory = []
        held.memory_rows = 0

    def _spill_page(self, spool: IO[bytes], participants: Sequence[Participant]) -> None:
        frame = _ENCODER.encode(participants)
        spool.write(len(frame).to_bytes(_FRAME_LENGTH, "big"))
        spool.write(frame)
        self.spilled_pages += 1

    @staticmethod
    def _pages(held: _Held, last: Sequence[Participant]) -> Iterator[Sequence[Participant]]:
        spool = held.spool
        if spool is not None:
            with spool:
                spool.flush()
                spool.seek(0)
                while header := spool.read(_FRAME_LENGTH):
                    yield _DECODER.decode(spool.read(int.from_bytes(header, "big")))
        yield from held.memory
        yield last
