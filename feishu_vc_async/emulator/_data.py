"""The emulator's data: a seeded, deterministic set of meetings, participants made lazily.

The meetings come from ``_meetings`` (a few draws each). A meeting's participants are
drawn from ``Random`` seeded by ``(seed, index)``, so they can be rebuilt at any time
without generating the others, and are only made when first read, from the seed's
directory of people and rooms (``_people``). Who attends (the *cast*) is the first part
of that draw and can be made alone, cheaply, for meeting_list's user and room filters.
Each row is kept as the person's pre-encoded fixed fields plus this meeting's JSON, so
a page is a byte join. Ended meetings are anchored at the start of the previous UTC day
(or at ``anchor``), so the same seed on the same day gives byte-identical data; ongoing
ones are placed before the clock's ``now`` at construction. The meetings that end while
the emulator serves (``_ending``) answer every lookup in their form at the clock's
current second.
"""

from __future__ import annotations

import bisect
import functools
import random
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import msgspec

from .._timeparse import format_duration, format_feishu_time
from .._validate import non_negative_int, positive_int
from ..models import JSON_ENCODER, Participant, UserIdType
from ._ending import EndingMeetings, end_seconds
from ._meetings import MeetingInfo, draw_ending, draw_meetings, webinar_guests
from ._options import MeetingData, MeetingsEnding
from ._people import LEAVE_REASONS, NETWORKS, PROTOCOLS, Person, directory

__all__ = ["Dataset", "ParticipantRow", "feishu_time"]

_DAY = 86_400
_BOOL = ("false", "true")
_REASON_JSON = {reason: JSON_ENCODER.encode(reason).decode() for reason in LEAVE_REASONS}
_ROLE_JSON = {None: "", "0": ',"webinar_user_role":"0"', "3": ',"webinar_user_role":"3"'}
_DAY_PARTS: dict[tuple[int, timezone], tuple[str, str]] = {}
_NO_ENDING = MeetingsEnding()


def feishu_time(ts: int, tz: timezone) -> str:
    """``format_feishu_time`` of ``ts`` shown in ``tz``, memoised per local day.

    The date and the offset come from ``format_feishu_time`` itself (of that day's local
    midnight); only the time of day is added here. Formatting is most of the cost of a
    participant row, and an export touches every row once.
    """
    offset = tz.utcoffset(None)
    day, second = divmod(ts + offset.days * _DAY + offset.seconds, _DAY)
    parts = _DAY_PARTS.get((day, tz))
    if parts is None:
        text = format_feishu_time(datetime.fromtimestamp(day * _DAY, UTC).replace(tzinfo=tz))
        parts = _DAY_PARTS[(day, tz)] = (text[:11], text[19:])
    return parts[0] + _clock()[second] + parts[1]


@functools.cache
def _clock() -> tuple[str, ...]:
    """``hh:mm:ss`` of every second of a day (made once): a row's times and its time in
    the meeting are looked up rather than formatted."""
    return tuple(
        f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
    )


def _duration(seconds: int) -> str:
    """``format_duration`` of ``seconds``."""
    if 0 <= seconds < _DAY:
        return _clock()[seconds]
    return format_duration(timedelta(seconds=seconds))


class ParticipantRow(NamedTuple):
    """One participant of one meeting: who (with every id) plus the per-meeting JSON.
    (A named tuple: made once per row generated, and cheaper to make than a frozen
    dataclass.)"""

    person: Person
    tail: bytes  # the per-meeting JSON members, from "," to the closing brace
    webinar_user_role: str | None

    def user_id_as(self, id_type: UserIdType) -> str | None:
        return self.person.user_id_as(id_type)

    @property
    def room_id(self) -> str | None:
        return self.person.room_id


class Dataset:
    """``count`` ended meetings, and ongoing ones, drawn from ``seed`` in the ``shape``
    given; participants generated on first read. ``clock`` is the wall clock: its ``now``
    places the ongoing meetings and the ``ending`` ones, which it then ends.

    Defaults: one webinar and one ongoing meeting when ``count >= 20`` (else none);
    ``count // 20`` meetings that reuse another's number (``recurring``) and as many
    external ones.
    """

    def __init__(
        self,
        count: int,
        *,
        seed: int,
        clock: Callable[[], float],
        shape: MeetingData,
        ending: MeetingsEnding = _NO_ENDING,
    ) -> None:
        now = clock()
        few = 1 if count >= 20 else 0
        counts = {
            "meetings": count,
            "webinars": few if shape.webinars is None else shape.webinars,
            "ongoing": few if shape.ongoing is None else shape.ongoing,
            "recurring": count // 20 if shape.recurring is None else shape.recurring,
            "external": count // 20 if shape.external is None else shape.external,
        }
        for name, value in counts.items():
            non_negative_int(name, value)
        webinar_size = shape.webinar_size
        positive_int("webinar_size", webinar_size)
        self.seed = seed
        # The newest meeting ends before the start of yesterday (UTC): always in the past.
        anchor = shape.anchor
        self.anchor = anchor if anchor is not None else (int(now) // _DAY - 1) * _DAY
        self.meetings = draw_meetings(
            count,
            seed=seed,
            anchor=self.anchor,
            now=now,
            webinars=counts["webinars"],
            webinar_size=webinar_size,
            ongoing=counts["ongoing"],
            recurring=counts["recurring"],
            external=counts["external"],
        )
        self.ended = self.meetings[:count]
        self.ongoing = self.meetings[count:]
        ends = end_seconds(ending, now)
        finals = draw_ending(ends, seed=seed, snapshot=int(now), taken=self.meetings)
        self.ending = EndingMeetings(finals, clock, lambda m: [r.tail for r in self.rows(m)])
        self._numbered: dict[str, list[MeetingInfo]] = {}
        for m in (*self.meetings, *finals):
            self._numbered.setdefault(m.meeting_no, []).append(m)
        self.ended_by_start = sorted(self.ended, key=_listing_order)
        self.ongoing_by_start = sorted(self.ongoing, key=_listing_order)
        self.ended_starts = [m.start for m in self.ended_by_start]
        self.longest = max(
            max((m.end - m.start for m in self.ended), default=0), self.ending.longest
        )
        self._rows: OrderedDict[int, list[ParticipantRow]] = OrderedDict()
        self._encoded: OrderedDict[tuple[object, ...], list[bytes]] = OrderedDict()
        self._casts: dict[int, frozenset[Person]] = {}
        self._ids: dict[UserIdType, dict[str, Person]] = {}
        self._pools: tuple[list[int], list[int]] | None = None
        self._cache_size = shape.cache_meetings
        self._directory_size = max(2048, webinar_size + 500)
        self._directory_ready = False

    def _directory(self) -> tuple[tuple[Person, ...], tuple[Person, ...]]:
        found = directory(self.seed, self._directory_size)
        self._directory_ready = True
        return found

    # --- lookups ----------------------------------------------------------------

    def find(self, meeting_no: str, start: int) -> MeetingInfo | None:
        """The meeting with this number that started at exactly ``start`` (a number is
        never held by two meetings at once, so number and start identify one), as it is
        now."""
        for m in self._numbered.get(meeting_no, ()):
            if m.start == start:
                return self.ending.current(m)
        return None

    def numbered(self, meeting_no: str) -> list[MeetingInfo]:
        """Every meeting (ended or ongoing) that held ``meeting_no``, oldest first, as it
        is now."""
        held = sorted(self._numbered.get(meeting_no, ()), key=_listing_order)
        return [self.ending.current(m) for m in held]

    def ended_now(self) -> list[MeetingInfo]:
        """Every meeting ended by now: the drawn ones, then the ending ones by end."""
        return [*self.ended, *self.ending.ended()]

    def ongoing_now(self) -> list[MeetingInfo]:
        """Every meeting still going on now, each as it is now."""
        return [*self.ongoing, *self.ending.ongoing()]

    def ongoing_listed(self) -> list[MeetingInfo]:
        """:meth:`ongoing_now` in listing order (start time, then instance id)."""
        if not self.ending.finals:
            return self.ongoing_by_start
        return sorted(self.ongoing_now(), key=_listing_order)

    def ended_starting(self, earliest: int, latest: int) -> list[MeetingInfo]:
        """The meetings ended by now that start from ``earliest`` to ``latest``, in
        listing order."""
        lo = bisect.bisect_left(self.ended_starts, earliest)
        hi = bisect.bisect_right(self.ended_starts, latest)
        found = self.ended_by_start[lo:hi]
        late = [m for m in self.ending.ended() if earliest <= m.start <= latest]
        return sorted(found + late, key=_listing_order) if late else found

    def host_index(self, meeting: MeetingInfo) -> int:
        """The organizer's place in the directory's people: a member of the tenant, or
        for an external meeting a guest from outside it."""
        if self._pools is None:
            people = self._directory()[0]
            self._pools = (
                [i for i, p in enumerate(people) if not p.external],
                [i for i, p in enumerate(people) if p.external],
            )
        pool = self._pools[1] if meeting.external else self._pools[0]
        return pool[meeting.host_slot % len(pool)]

    def organizer(self, meeting: MeetingInfo) -> Person:
        return self._directory()[0][self.host_index(meeting)]

    def cast(self, meeting: MeetingInfo) -> frozenset[Person]:
        """Everyone in the meeting's participant rows, without making the rows (of an
        ending meeting shown as ongoing: those who had joined by its moment)."""
        if self.ending.is_view(meeting):
            return frozenset(row.person for row in self.rows(meeting))
        found = self._casts.get(meeting.index)
        if found is None:
            rng = random.Random(f"rows:{self.seed}:{meeting.index}")
            who = _cast(meeting, rng, self._directory(), self.host_index(meeting))
            found = self._casts[meeting.index] = frozenset(who)
        return found

    def person(self, id_type: UserIdType, user_id: str) -> Person | None:
        """The member or guest whose ``id_type`` id is ``user_id``."""
        ids = self._ids.get(id_type)
        if ids is None:
            people = self._directory()[0]
            ids = self._ids[id_type] = {}
            for p in people:
                uid = p.user_id_as(id_type)
                if uid is not None:
                    ids[uid] = p
        return ids.get(user_id)

    def room(self, room_id: str) -> Person | None:
        return next((r for r in self._directory()[1] if r.room_id == room_id), None)

    def costly(self, meeting: MeetingInfo, threshold: int) -> bool:
        """Whether reading ``meeting`` first means real work: its rows are not made yet and
        it is large, or the directory of people itself is not made yet."""
        if meeting.index in self._rows:
            return False
        return meeting.participant_count >= threshold or not self._directory_ready

    # --- rows -------------------------------------------------------------------

    def _put(self, cache: OrderedDict[Any, Any], key: object, value: object) -> None:
        cache[key] = value
        if len(cache) > self._cache_size:
            cache.popitem(last=False)

    def _generate(self, meeting: MeetingInfo) -> list[ParticipantRow]:
        # An ending meeting's rows are always its final ones; views are cut from them.
        meeting = self.ending.final(meeting)
        rng = random.Random(f"rows:{self.seed}:{meeting.index}")
        return _generate(meeting, rng, self._directory(), self.host_index(meeting))

    def has_rows(self, meeting: MeetingInfo) -> bool:
        return meeting.index in self._rows

    def build(
        self, meeting: MeetingInfo, id_type: UserIdType, permitted: bool
    ) -> tuple[list[ParticipantRow], list[bytes]]:
        """Generate a meeting's rows and one encoded view without touching the caches,
        so it can run in a worker thread while the server keeps answering."""
        rows = self._generate(meeting)
        return rows, [r.person.static(id_type, permitted) + r.tail for r in rows]

    def store(
        self,
        meeting: MeetingInfo,
        built: tuple[list[ParticipantRow], list[bytes]],
        id_type: UserIdType,
        permitted: bool,
    ) -> None:
        rows, encoded = built
        self._put(self._rows, meeting.index, rows)
        self._put(self._encoded, (meeting.index, id_type, permitted, None, None, None), encoded)

    def rows(self, meeting: MeetingInfo) -> list[ParticipantRow]:
        if self.ending.is_view(meeting):
            # Cut from the final rows: whoever has left looks the same before and after.
            final = self.rows(self.ending.final(meeting))
            tails = self.ending.view_tails(meeting)
            return [row._replace(tail=tail) for row, tail in zip(final, tails, strict=False)]
        rows = self._rows.get(meeting.index)
        if rows is None:
            rows = self._generate(meeting)
            self._put(self._rows, meeting.index, rows)
        else:
            self._rows.move_to_end(meeting.index)
        return rows

    def select(
        self,
        meeting: MeetingInfo,
        id_type: UserIdType,
        *,
        user_id: str | None = None,
        room_id: str | None = None,
        webinar_role: str | None = None,
    ) -> list[ParticipantRow]:
        """The rows a query with these filters returns, in their stable order."""
        rows = self.rows(meeting)
        if user_id is not None:
            rows = [r for r in rows if r.user_id_as(id_type) == user_id]
        if room_id is not None:
            rows = [r for r in rows if r.room_id == room_id]
        if webinar_role is not None:
            rows = [r for r in rows if r.webinar_user_role == webinar_role]
        return rows

    def encoded(
        self,
        meeting: MeetingInfo,
        id_type: UserIdType,
        permitted: bool,
        *,
        user_id: str | None = None,
        room_id: str | None = None,
        webinar_role: str | None = None,
    ) -> list[bytes]:
        """The JSON of each selected participant, cached (not a view, which changes by
        the second): a page is then a byte join."""
        key = (meeting.index, id_type, permitted, user_id, room_id, webinar_role)
        view = self.ending.is_view(meeting)
        found = None if view else self._encoded.get(key)
        if found is not None:
            self._encoded.move_to_end(key)
            return found
        rows = self.select(
            meeting, id_type, user_id=user_id, room_id=room_id, webinar_role=webinar_role
        )
        found = [r.person.static(id_type, permitted) + r.tail for r in rows]
        if not view:
            self._put(self._encoded, key, found)
        return found

    def participants(
        self,
        meeting: MeetingInfo,
        id_type: UserIdType,
        permitted: bool,
        *,
        user_id: str | None = None,
        room_id: str | None = None,
        webinar_role: str | None = None,
    ) -> list[Participant]:
        """Ground truth: exactly what the pages carry, decoded."""
        encoded = self.encoded(
            meeting, id_type, permitted, user_id=user_id, room_id=room_id, webinar_role=webinar_role
        )
        return [_PARTICIPANT_DECODER.decode(row) for row in encoded]


_PARTICIPANT_DECODER = msgspec.json.Decoder(Participant)


def _listing_order(meeting: MeetingInfo) -> tuple[int, str]:
    return meeting.start, meeting.instance_id


def _cast(
    meeting: MeetingInfo,
    rng: random.Random,
    directory: tuple[tuple[Person, ...], tuple[Person, ...]],
    host: int,
) -> list[Person]:
    """Who attends, in join order: the organizer first, then people and rooms shuffled.
    The first draws of a meeting's rows, so the cast alone costs no row formatting."""
    people, rooms = directory
    r = rng.random
    n = meeting.participant_count
    n_rooms = 0 if meeting.webinar else min(len(rooms), sum(r() < 0.05 for _ in range(n - 1)))
    # Everyone but the organizer, whose index is skipped over.
    others = [people[i + (i >= host)] for i in rng.sample(range(len(people) - 1), n - n_rooms - 1)]
    others += [rooms[i] for i in rng.sample(range(len(rooms)), n_rooms)]
    rng.shuffle(others)
    return [people[host], *others]


def _generate(
    meeting: MeetingInfo,
    rng: random.Random,
    directory: tuple[tuple[Person, ...], tuple[Person, ...]],
    host: int,
) -> list[ParticipantRow]:
    who = _cast(meeting, rng, directory, host)
    r = rng.random
    n = len(who)
    span = meeting.end - meeting.start
    # Nobody has been sent out by the host of a meeting that is still going on.
    host_end = r() < 0.7 and not meeting.ongoing
    guests = webinar_guests(n) if meeting.webinar else 0
    joins = [meeting.start, *sorted(meeting.start + int(r() ** 3 * span * 0.8) for _ in who[1:])]
    rows: list[ParticipantRow] = []
    for k, (person, join) in enumerate(zip(who, joins, strict=True)):
        role = ("0" if k < guests else "3") if meeting.webinar else None
        if meeting.ongoing and (k == 0 or r() < 0.6):
            # Still in the meeting: no leave_time or leave_reason; time so far.
            left, reason_json, stay = "", "", meeting.end - join
        else:
            if host_end and r() < 0.75:
                leave, reason = meeting.end, LEAVE_REASONS[0]
            else:
                leave = min(meeting.end, join + 1 + int(r() * (meeting.end - join)))
                reason = LEAVE_REASONS[1 + int(r() * (len(LEAVE_REASONS) - 1))]
            left = f',"leave_time":"{feishu_time(leave, person.tz)}"'
            stay = leave - join
            reason_json = f',"leave_reason":{_REASON_JSON[reason]}'
        accept = r()
        status = 1 if accept < 0.6 else 2 if accept < 0.65 else 3 if accept < 0.75 else 4
        network = "wired" if person.room_id else NETWORKS[int(r() * len(NETWORKS))]
        # Built as text: every value is a fixed ASCII token or pre-encoded JSON, and this
        # is the hot loop of generation (an export touches every row once).
        tail = (
            f',"use_rtc_proxy":{_BOOL[r() < 0.05]},"network_type":"{network}",'
            f'"protocol":"{PROTOCOLS[int(r() * len(PROTOCOLS))]}",'
            f'"audio":{_BOOL[r() < 0.8]},"video":{_BOOL[r() < 0.5]},"sharing":{_BOOL[r() < 0.1]},'
            f'"join_time":"{feishu_time(join, person.tz)}"{left},'
            f'"time_in_meeting":"{_duration(stay)}"'
            f'{reason_json},"accept_status":{status}'
            f"{_ROLE_JSON[role]}}}"
        )
        rows.append(ParticipantRow(person, tail.encode(), role))
    return rows
