"""A range export's meetings: meeting_list's query, and how its range was read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ..meetings import MeetingListQuery

__all__ = ["MeetingRange"]

@dataclass(frozen=True, slots=True)
class MeetingRange:
    """The meetings asked for, and how the range was read (for the summary)."""

    query: MeetingListQuery
    zone: tzinfo
    since_text: str
    until_text: str

    def describe(self) -> str:
        """``2026-11-01 00:00:00 +08:00 (1793462400) .. ... in Asia/Shanghai``."""
        start, end = self.query.start_time, self.query.end_time
        return (
            f"{_shown(start, self.zone)} ({start}) .. {_shown(end, self.zone)} ({end}), "
            f"--since {self.since_text!r} and --until {self.until_text!r} read in {self.zone}"
        )


def _shown(seconds: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(seconds, UTC).astimezone(zone).isoformat(sep=" ")




