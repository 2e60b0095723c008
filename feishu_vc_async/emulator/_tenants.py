"""Tenants and their data: the home tenant of custom apps, the tenants of store apps.

Each tenant holds meetings of its own: a :class:`Dataset` whose seed is derived from
``(seed, tenant_key)``, made on first use, with the home tenant's anchor day so every
tenant's meetings lie in the same past month. The home tenant's dataset is the
emulator's own (``emu.meetings``), the only one with meetings that end while it serves
(``MeetingsEnding``). A tenant key installed in two store apps is one tenant: both see
the same meetings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .._validate import non_negative_int
from ..models import MeetingQuery, Participant, UserIdType
from ._data import Dataset
from ._meetings import MeetingInfo
from ._options import MeetingData

__all__ = ["TenantView", "Tenants", "derive_key", "find_meeting", "ground_truth"]


def derive_key(label: str) -> str:
    """A stable 16-hex-digit key (the shape of a real ``tenant_key``) from ``label``."""
    return hashlib.sha256(label.encode()).hexdigest()[:16]


def find_meeting(
    data: Dataset, meeting: MeetingQuery | str, start: int | None = None
) -> MeetingInfo:
    """The meeting a query names (by number and exact start), or the one meeting that
    held a number. ``KeyError`` if there is none; ``ValueError`` if a number alone is
    ambiguous (it recurs: pass the query or ``start``)."""
    if isinstance(meeting, MeetingQuery):
        number, start = meeting.meeting_no, meeting.meeting_start_time
    else:
        number = meeting
    if start is not None:
        found = data.find(number, start)
        if found is None:
            raise KeyError(f"no meeting numbered {number} started at {start}")
        return found
    held = data.numbered(number)
    if not held:
        raise KeyError(f"no meeting numbered {number}")
    if len(held) > 1:
        starts = ", ".join(str(m.start) for m in held)
        raise ValueError(
            f"meeting number {number} was held by {len(held)} meetings (starts {starts}): "
            "name one by its MeetingQuery or start time"
        )
    return held[0]


def ground_truth(data: Dataset, query: MeetingQuery | str, permitted: bool) -> list[Participant]:
    """What participant_list delivers for ``query`` across all pages, in page order (a
    meeting number, if it does not recur: every participant, open_id ids)."""
    meeting = find_meeting(data, query)
    if isinstance(query, str):
        query = meeting.query
    role = query.webinar_user_role
    return data.participants(
        meeting,
        UserIdType(query.user_id_type),
        permitted,
        user_id=query.user_id,
        room_id=query.room_id,
        webinar_role=None if role is None else str(role),
    )


class Tenants:
    """Every tenant the emulator knows, by key, and its dataset."""

    def __init__(
        self, seed: int, home: Dataset, shape: MeetingData, clock: Callable[[], float]
    ) -> None:
        self._seed = seed
        self.home_key = derive_key(f"home-tenant:{seed}")
        # Another tenant's meetings take the home tenant's shape and anchor day; the
        # counts of ongoing, recurring and external ones follow from its own meetings.
        self._shape = replace(
            shape, anchor=home.anchor, ongoing=None, recurring=None, external=None
        )
        self._clock = clock
        self._counts: dict[str, int] = {self.home_key: len(home.meetings)}
        self._data: dict[str, Dataset] = {self.home_key: home}

    def add(self, key: str, meetings: int) -> None:
        """Know tenant ``key`` with ``meetings`` meetings (a known tenant keeps its own)."""
        non_negative_int("meetings", meetings)
        self._counts.setdefault(key, meetings)

    def __contains__(self, key: object) -> bool:
        return key in self._counts

    def dataset(self, key: str | None) -> Dataset:
        """The data of tenant ``key`` (None: the home tenant), made on first use."""
        key = key or self.home_key
        found = self._data.get(key)
        if found is None:
            seed = int(derive_key(f"tenant-data:{self._seed}:{key}"), 16)
            found = Dataset(self._counts[key], seed=seed, clock=self._clock, shape=self._shape)
            self._data[key] = found
        return found


@dataclass(frozen=True, slots=True)
class TenantView:
    """Ground truth of one tenant: its meetings and what participant_list returns."""

    tenant_key: str
    _data: Dataset = field(repr=False)

    @property
    def meetings(self) -> list[MeetingQuery]:
        """Every meeting, ended ones first, as it is now."""
        return [m.query for m in (*self._data.ended_now(), *self._data.ongoing_now())]

    @property
    def webinars(self) -> list[MeetingQuery]:
        return [m.query for m in self._data.meetings if m.webinar]

    def meeting_info(self, meeting: MeetingQuery | str, start: int | None = None) -> MeetingInfo:
        return find_meeting(self._data, meeting, start)

    def participants(
        self, query: MeetingQuery | str, *, user_id_permission: bool = False
    ) -> list[Participant]:
        """What an app (with or without the user id permission) receives for ``query``."""
        return ground_truth(self._data, query, user_id_permission)
