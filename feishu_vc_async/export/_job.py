"""What an export does: which meetings, to which output, and what to do with what an
earlier run left."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._constants import PAGE_SIZE_ITER_DEFAULT
from .._validate import non_negative_seconds, positive_int
from ..meetings import MeetingListQuery
from ..models import MeetingQuery, validate_page_size
from ._ledger import HELD_ROWS_DEFAULT, OpenMode
from ._output import Output
from ._range import MeetingRange

__all__ = ["ExportJob"]

_MODES: tuple[OpenMode, ...] = ("new", "resume", "retry_failed", "overwrite")


@dataclass(frozen=True, slots=True)
class ExportJob:
    """One export: the participants of ``meetings`` into ``output``.

    ``meetings``: a :class:`MeetingRange` (or a bare ``MeetingListQuery``), whose
    meetings are found through meeting_list while their participants are fetched, or
    the meetings themselves (``MeetingQuery``s; a meetings file's ``MeetingList`` orders
    them largest first by the sizes it gave). ``mode``: see ``OpenMode`` ("new" by
    default: refuse to discard an unfinished export or a file that is not this
    export's). ``page_size`` and ``concurrency``: the fan-out's. ``commit_interval``:
    the least seconds between two commits of rows and progress (0: after every record);
    only how much a crash makes the next run fetch again depends on it. ``held_rows``:
    the rows of meetings in flight (not read to their last page) held in memory; past
    it they wait in anonymous spool files in ``spool_dir`` (the temporary directory
    when ``None``), so memory does not grow with the meetings' sizes. ``skip``: a
    range export's meetings found but not fetched (a sync's, already in its tables).
    """

    meetings: MeetingRange | MeetingListQuery | Sequence[MeetingQuery]
    output: Output
    mode: OpenMode = "new"
    page_size: int = PAGE_SIZE_ITER_DEFAULT
    concurrency: int | None = None
    commit_interval: float = 0.5
    held_rows: int = HELD_ROWS_DEFAULT
    spool_dir: Path | None = None
    skip: Callable[[MeetingQuery], bool] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.meetings, MeetingListQuery):
            object.__setattr__(self, "meetings", MeetingRange(self.meetings))
        if self.mode not in _MODES:
            raise ValueError(f"mode={self.mode!r}: must be one of {', '.join(_MODES)}")
        validate_page_size(self.page_size)
        if self.concurrency is not None:
            positive_int("concurrency", self.concurrency)
        non_negative_seconds("commit_interval", self.commit_interval)
        positive_int("held_rows", self.held_rows)

    @property
    def range(self) -> MeetingRange | None:
        """A range export's range (``None``: the meetings were given)."""
        return self.meetings if isinstance(self.meetings, MeetingRange) else None

    @property
    def queries(self) -> Sequence[MeetingQuery]:
        """The given meetings (empty for a range export)."""
        return () if isinstance(self.meetings, MeetingRange | MeetingListQuery) else self.meetings

    @property
    def identity(self) -> list[str]:
        """What identifies the meetings in the export's fingerprint."""
        found = self.range
        return found.identity if found is not None else [q.key for q in self.queries]
