"""What a sync keeps current, and what it keeps in the database to do so."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from .._constants import PAGE_SIZE_ITER_DEFAULT
from .._validate import non_negative_seconds, positive_int, positive_seconds
from ..export import DatabaseOutput
from ..meetings import MeetingListQuery
from ..models import validate_page_size

__all__ = ["DAY", "LONGEST_MEETING", "SyncJob", "SyncState"]

DAY = 86_400
# participant_list takes no meeting longer than a day (126006): a meeting that ended at
# T started at T - 1 day or later, so listing by start from there finds it.
LONGEST_MEETING = DAY


@dataclass(frozen=True, slots=True)
class SyncJob:
    """Keep ``output``'s tables current with the meetings that end.

    ``since``: seconds back from the first run whose ended meetings the first cycle
    takes (the backfill; 30 days by default). ``interval``: seconds from one cycle's
    start to the next's. ``overlap``: how late after its end the platform may list a
    meeting; each cycle lists again that far behind where the last one stopped (the
    meetings already in the tables are not fetched again). ``filters``: meeting_list's
    filters (its range is set by each cycle). ``page_size``, ``concurrency`` and
    ``commit_interval``: the export's.
    """

    output: DatabaseOutput
    since: float = 30 * DAY
    interval: float = 300.0
    overlap: float = 3600.0
    filters: MeetingListQuery | None = None
    page_size: int = PAGE_SIZE_ITER_DEFAULT
    concurrency: int | None = None
    commit_interval: float = 0.5

    def __post_init__(self) -> None:
        positive_seconds("since", self.since)
        positive_seconds("interval", self.interval)
        non_negative_seconds("overlap", self.overlap)
        validate_page_size(self.page_size)
        if self.concurrency is not None:
            positive_int("concurrency", self.concurrency)
        non_negative_seconds("commit_interval", self.commit_interval)


class SyncState(msgspec.Struct, kw_only=True):
    """A sync's place, kept in the database beside the rows it describes.

    ``floor``: meetings that ended before it are not taken (the first run's backfill
    start). ``watermark``: every meeting that ended before it (and was listed by then)
    is in the tables; a cycle that could not get every meeting leaves it where it was.
    """

    floor: int
    watermark: int
    cycles: int = 0
