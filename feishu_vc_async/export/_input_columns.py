"""The meetings file's columns: which are read, which are read past, which are typos.

One rule for a CSV header and a JSONL object's keys alike, so both formats take the same
files: a list of meetings taken from meeting_list's answers loads as it is, and a name
that looks like a typo of a missing known column is an error rather than a column that
silently does nothing.
"""

from __future__ import annotations

import difflib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._constants import LOGGER_NAME
from ..meetings import Meeting
from ._rows import MeetingRows

__all__ = [
    "KNOWN_COLUMNS",
    "MEETING_LIST_COLUMNS",
    "MEETING_NO_ALIAS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SIZE_COLUMN",
    "TYPO_CUTOFF",
    "Columns",
    "IgnoredColumns",
    "sort_columns",
]

REQUIRED_COLUMNS = ("meeting_no", "meeting_start_time", "meeting_end_time")
OPTIONAL_COLUMNS = (
    "meeting_status",
    "user_id",
    "room_id",
    "webinar_user_role",
    "user_id_type",
)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# meeting_list's meeting_info fields: a list of meetings taken from its answers carries
# them. They describe the meeting, not the query, so they are read past; meeting_id is
# its name for meeting_no and stands in for it when meeting_no is absent.
MEETING_LIST_COLUMNS = (
    *Meeting.__struct_fields__,
    # what `feishu-vc meetings` writes besides the query's own columns
    *MeetingRows.COLUMNS,
)
MEETING_NO_ALIAS = "meeting_id"
# meeting_list's count of a meeting's participants: not part of the query, but what the
# export starts the largest meetings first by (a long meeting started last is a tail).
SIZE_COLUMN = "number_of_participants"
# How alike a column name must be to a missing known column to be taken for a typo of
# it (difflib's ratio): "meeting_strat_time" and "room_di" are, "meeting_name" is not.
TYPO_CUTOFF = 0.8

logger = logging.getLogger(f"{LOGGER_NAME}.export")


@dataclass(slots=True)
class IgnoredColumns:
    """Columns read past, across the whole file, for one warning at the end."""

    names: dict[str, None] = field(default_factory=dict)  # an ordered set
    organizer_user_id: bool = False

    def warn(self, source: str) -> None:
        if not self.names:
            return
        listed = ", ".join(map(repr, self.names))
        note = (
            "; user_id is meeting_list's organizer in a file keyed by meeting_id, not a "
            "participant filter (name the column meeting_no to filter by user_id)"
            if self.organizer_user_id
            else ""
        )
        logger.warning("%s: ignoring column(s) the export does not use: %s%s", source, listed, note)


@dataclass(frozen=True, slots=True)
class Columns:
    """How one header (CSV) or one object's keys (JSONL) map onto the query's columns."""

    used: dict[str, str]  # name in the file → query column (meeting_id → meeting_no)
    ignored: tuple[str, ...]
    missing: tuple[str, ...]  # required columns absent
    typos: tuple[str, ...]  # rules: unknown names that look like a missing known column


@functools.lru_cache(maxsize=256)  # JSONL lines mostly repeat one set of keys
def sort_columns(names: tuple[str, ...]) -> Columns:
    present = set(names)
    # A meeting_list-shaped file: its meeting_id is the number, its user_id the organizer.
    keyed_by_id = "meeting_no" not in present and MEETING_NO_ALIAS in present
    if keyed_by_id:
        present |= {"meeting_no"}
    absent = [c for c in KNOWN_COLUMNS if c not in present]
    used: dict[str, str] = {}
    ignored: list[str] = []
    typos: list[str] = []
    for name in dict.fromkeys(names):
        if name in KNOWN_COLUMNS and not (keyed_by_id and name == "user_id"):
            used[name] = name
        elif keyed_by_id and name == MEETING_NO_ALIAS:
            used[name] = "meeting_no"
        elif name == SIZE_COLUMN:
            used[name] = name
        elif name in MEETING_LIST_COLUMNS:
            # What a list of meetings says of them: read past without a word, except the
            # organizer's user_id, which the warning explains.
            if name == "user_id":
                ignored.append(name)
        elif (guess := _likely_typo(name, absent)) is not None:
            typos.append(f"unknown column {name!r} (did you mean {guess!r}?)")
        else:
            ignored.append(name)
    missing = tuple(c for c in REQUIRED_COLUMNS if c not in present)
    return Columns(used, tuple(ignored), missing, tuple(typos))


def _likely_typo(name: str, absent: Sequence[str]) -> str | None:
    """The missing known column ``name`` was probably meant to be, if any.

    Only columns the file lacks are candidates: next to a real meeting_no, a column
    "meeting_name" is another system's, not a typo. Required columns are tried first, so
    "meeting_start" is taken for meeting_start_time rather than meeting_status.
    """
    normal = name.strip().lower().replace("-", "_").replace(" ", "_")
    required = [c for c in absent if c in REQUIRED_COLUMNS]
    optional = [c for c in absent if c not in REQUIRED_COLUMNS]
    for pool in (required, optional):
        if normal in pool:  # "Meeting No", "ROOM-ID"
            return normal
        close = difflib.get_close_matches(normal, pool, n=1, cutoff=TYPO_CUTOFF)
        if close:
            return close[0]
    return None
