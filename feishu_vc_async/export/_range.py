"""A range export's meetings: meeting_list's query, and how its range was written."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from .._constants import LOGGER_NAME
from ..meetings import Meeting, MeetingListQuery
from ..models import MeetingQuery

__all__ = ["MeetingRange"]

logger = logging.getLogger(LOGGER_NAME + ".export")


@dataclass(frozen=True, slots=True)
class MeetingRange:
    """The meetings of ``query``'s range, found through meeting_list while the export runs.

    ``since_text`` / ``until_text`` are how the ends were written, when they were written
    relative to now ("7d", "now"): they identify the export, so that continuing it
    continues the range it began with (the saved progress keeps the instants resolved
    then), not the week "7d" means today. Without them the instants identify it.
    ``zone``: where the instants are shown.

    A range holds the meetings that *start* in it (:meth:`holds`), ends included: the
    platform may list a meeting that merely overlaps a range (its reference leaves the
    rule open), which would put a meeting crossing midnight into two consecutive
    ranges; by its start, consecutive ranges (``--until`` one second before the next
    ``--since``, as whole days are) hold each meeting exactly once.
    """

    query: MeetingListQuery
    zone: tzinfo = UTC
    since_text: str | None = None
    until_text: str | None = None

    @property
    def identity(self) -> list[str]:
        """What identifies the export's meetings: the range as written, and the filters."""
        query = self.query
        since = self.since_text if self.since_text is not None else str(query.start_time)
        until = self.until_text if self.until_text is not None else str(query.end_time)
        return [
            "range",
            f"since={since}",
            f"until={until}",
            f"tz={self.zone}",
            *(f"{k}={v}" for k, v in sorted(query.to_params().items())
              if k not in ("start_time", "end_time")),
        ]  # fmt: skip

    @staticmethod
    def holds(query: MeetingListQuery, meeting: Meeting) -> bool:
        """Whether ``meeting`` starts within ``query``'s range (the saved one, when an
        export resumes)."""
        start = meeting.start_seconds
        return start is not None and query.start_time <= start <= query.end_time

    @staticmethod
    def read(query: MeetingListQuery, meeting: Meeting) -> MeetingQuery | None:
        """The participant_list query of a meeting listed for ``query``'s range; ``None``
        for one the range does not hold (:meth:`holds`: it is the range of its start's)
        or that cannot be read (listed without a readable end: logged)."""
        if not MeetingRange.holds(query, meeting):
            return None
        try:
            return meeting.query(user_id_type=query.user_id_type)
        except ValueError as exc:
            logger.warning("meeting_list: %s; skipped", exc)
            return None

    def instants(self, query: MeetingListQuery | None = None) -> str:
        """``2026-11-01 00:00:00+08:00 (1793462400) .. 2026-11-30 23:59:59+08:00 (...)``
        of this range (or of ``query``'s: the one an export resumed with)."""
        used = query or self.query
        start, end = used.start_time, used.end_time
        return f"{_shown(start, self.zone)} ({start}) .. {_shown(end, self.zone)} ({end})"


def _shown(seconds: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(seconds, UTC).astimezone(zone).isoformat(sep=" ")
