"""An export's progress, as every output saves it: the fan-out's resume state, a range
export's discovery, the counts, and whether the output is final.

It knows nothing of formats or of where it is kept: a file output saves it in a
checkpoint file beside the data, a database output would save it in a table, in the
same transaction as the rows it describes (see ``_output``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from ..discovery import DiscoveryPosition
from ..fanout import Resume
from ..meetings import Meeting, MeetingListQuery
from ..models import MeetingQuery

__all__ = ["DiscoveryState", "ExportState", "Found", "fingerprint"]


class Found(msgspec.Struct, kw_only=True):
    """A meeting a range export's discovery found: the participant_list query it is read
    with (an ongoing meeting's end fixed when it was found) and what meeting_list said."""

    query: MeetingQuery
    meeting: Meeting


class DiscoveryState(msgspec.Struct, kw_only=True):
    """A range export's discovery: the range it lists (the instants resolved when the
    export began, so a resume of "the last 7 days" continues the same week), where the
    listing stands, and every meeting found so far, in the order found."""

    range: MeetingListQuery
    position: DiscoveryPosition = msgspec.field(default_factory=DiscoveryPosition)
    found: list[Found] = []


class ExportState(msgspec.Struct, kw_only=True):
    """What an export has done, saved together with the rows it describes."""

    # Identifies the export (meetings, output shape, page size): see fingerprint().
    fingerprint: str
    rows: int = 0
    pages: int = 0
    # The fan-out's own resume state: finished meetings, next page tokens, and meetings
    # given up for good.
    resume: Resume = msgspec.field(default_factory=Resume)
    # A range export's discovery (None: the meetings were given).
    discovery: DiscoveryState | None = None
    # Every meeting done or given up for good, and the output final.
    finalized: bool = False


def fingerprint(meetings: Iterable[str], *, shape: Iterable[str], page_size: int) -> str:
    """Identify the export a saved state belongs to: its meetings (the queries' keys, or
    a range export's options as typed), what shapes the output (``Output.shape``) and
    the page size (page tokens are only meaningful for the page size that made them)."""
    h = hashlib.sha256()
    for part in (*shape, str(page_size)):
        h.update(part.encode())
        h.update(b"\x00")
    for meeting in meetings:
        h.update(meeting.encode())
        h.update(b"\n")
    return h.hexdigest()[:32]
