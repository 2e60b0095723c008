"""The emulator's data: a seeded, deterministic set of meetings, participants made lazily.

Every meeting is drawn from ``Random`` seeded by ``(seed, index)``, so a meeting's
participants can be rebuilt at any time without generating the others: building the
meeting list is cheap (a few draws per meeting), and the rows of one meeting are only
made when it is first read, from the seed's directory of people and rooms (``_people``).
Each row is kept as the person's pre-encoded fixed fields plus this meeting's JSON, so
a page is a byte join. Times are anchored at the start of the previous UTC day (or at
``anchor``), so the same seed on the same day gives byte-identical data.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec

from ..models import (
    JSON_ENCODER,
    MeetingQuery,
    Participant,
    UserIdType,
    format_duration,
    format_feishu_time,
)
from ._people import LEAVE_REASONS, NETWORKS, PROTOCOLS, Person, directory

__all__ = ["Dataset", "MeetingInfo", "ParticipantRow"]

_DAY = 86_400
_BOOL = ("false", "true")
_REASON_JSON = {reason: JSON_ENCODER.encode(reason).decode() for reason in LEAVE_REASONS}
_ROLE_JSON = {None: "", "0": ',"webinar_user_role":"0"', "3": ',"webinar_user_role":"3"'}
_DAY_PARTS: dict[tuple[int, timezone], tuple[str, str]] = {}


def _feishu_time(ts: int, tz: timezone) -> str:
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
    hours, rest = divmod(second, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{parts[0]}{hours:02d}:{minutes:02d}:{seconds:02d}{parts[1]}"


@dataclass(frozen=True, slots=True)
class MeetingInfo:
    """One meeting of the emulator: its number, exact times, size and kind."""

    index: int
    meeting_no: str
    start: int
    end: int
    participant_count: int
    webinar: bool

    @property
    def query(self) -> MeetingQuery:
        return MeetingQuery(
            meeting_no=self.meeting_no, meeting_start_time=self.start, meeting_end_time=self.end
        )


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    """One participant of one meeting: who (with every id) plus the per-meeting JSON."""

    person: Person
    tail: bytes  # the per-meeting JSON members, from "," to the closing brace
    webinar_user_role: str | None

    def user_id_as(self, id_type: UserIdType) -> str | None:
        return self.person.user_id_as(id_type)

    @property
    def room_id(self) -> str | None:
        return self.person.room_id


def _long_tail_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.85:
        return min(30, 2 + int(rng.expovariate(1 / 6)))
    if roll < 0.98:
        return rng.randint(31, 300)
    return rng.randint(301, 900)


class Dataset:
    """``count`` meetings drawn from ``seed``; participants generated on first read."""

    def __init__(
        self,
        count: int,
        *,
        seed: int,
        now: float,
        webinars: int | None = None,
        webinar_size: int = 3000,
        anchor: int | None = None,
        cache_size: int = 512,
    ) -> None:
        if count < 0:
            raise ValueError(f"meetings={count!r}: cannot be negative")
        self.seed = seed
        # The newest meeting ends before the start of yesterday (UTC): always in the past.
        self.anchor = anchor if anchor is not None else (int(now) // _DAY - 1) * _DAY
        if webinars is None:
            webinars = 1 if count >= 20 else 0
        rng = random.Random(f"meetings:{seed}")
        webinar_idx = set(rng.sample(range(count), min(webinars, count)))
        numbers = rng.sample(range(100_000_000, 1_000_000_000), count)
        self.meetings: list[MeetingInfo] = []
        for i, number in enumerate(numbers):
            span = rng.randint(10 * 60, 4 * 3600)
            if i in webinar_idx:
                span = rng.randint(3600, 3 * 3600)
            end = self.anchor - rng.randint(0, 30 * _DAY)
            size = webinar_size if i in webinar_idx else _long_tail_size(rng)
            self.meetings.append(
                MeetingInfo(i, f"{number:09d}", end - span, end, size, i in webinar_idx)
            )
        self.by_no: dict[str, MeetingInfo] = {m.meeting_no: m for m in self.meetings}
        self._rows: OrderedDict[int, list[ParticipantRow]] = OrderedDict()
        self._encoded: OrderedDict[tuple[object, ...], list[bytes]] = OrderedDict()
        self._cache_size = cache_size
        self._directory_size = max(2048, webinar_size + 500)
        self._directory_ready = False

    def _directory(self) -> tuple[tuple[Person, ...], tuple[Person, ...]]:
        found = directory(self.seed, self._directory_size)
        self._directory_ready = True
        return found

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

    def has_rows(self, meeting: MeetingInfo) -> bool:
        return meeting.index in self._rows

    def build(
        self, meeting: MeetingInfo, id_type: UserIdType, permitted: bool
    ) -> tuple[list[ParticipantRow], list[bytes]]:
        """Generate a meeting's rows and one encoded view without touching the caches,
        so it can run in a worker thread while the server keeps answering."""
        rng = random.Random(f"rows:{self.seed}:{meeting.index}")
        rows = _generate(meeting, rng, self._directory())
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
        rows = self._rows.get(meeting.index)
        if rows is None:
            rng = random.Random(f"rows:{self.seed}:{meeting.index}")
            rows = _generate(meeting, rng, self._directory())
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
        """The JSON of each selected participant, cached: a page is then a byte join."""
        key = (meeting.index, id_type, permitted, user_id, room_id, webinar_role)
        found = self._encoded.get(key)
        if found is not None:
            self._encoded.move_to_end(key)
            return found
        rows = self.select(
            meeting, id_type, user_id=user_id, room_id=room_id, webinar_role=webinar_role
        )
        found = [r.person.static(id_type, permitted) + r.tail for r in rows]
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


def _generate(
    meeting: MeetingInfo, rng: random.Random, directory: tuple[tuple[Person, ...], ...]
) -> list[ParticipantRow]:
    people, rooms = directory
    r = rng.random
    n = meeting.participant_count
    n_rooms = 0 if meeting.webinar else min(len(rooms), sum(r() < 0.05 for _ in range(n - 1)))
    who = [people[i] for i in rng.sample(range(len(people)), n - n_rooms)]
    who += [rooms[i] for i in rng.sample(range(len(rooms)), n_rooms)]
    span = meeting.end - meeting.start
    host_end = r() < 0.7
    guests = max(1, n // 40) if meeting.webinar else 0
    others = who[1:]  # the host (a person) joins first, the others in random order
    rng.shuffle(others)
    who = [who[0], *others]
    joins = [meeting.start, *sorted(meeting.start + int(r() ** 3 * span * 0.8) for _ in others)]
    rows: list[ParticipantRow] = []
    for k, (person, join) in enumerate(zip(who, joins, strict=True)):
        role = ("0" if k < guests else "3") if meeting.webinar else None
        if host_end and r() < 0.75:
            leave, reason = meeting.end, LEAVE_REASONS[0]
        else:
            leave = min(meeting.end, join + 1 + int(r() * (meeting.end - join)))
            reason = LEAVE_REASONS[1 + int(r() * (len(LEAVE_REASONS) - 1))]
        accept = r()
        status = 1 if accept < 0.6 else 2 if accept < 0.65 else 3 if accept < 0.75 else 4
        network = "wired" if person.room_id else NETWORKS[int(r() * len(NETWORKS))]
        # Built as text: every value is a fixed ASCII token or pre-encoded JSON, and this
        # is the hot loop of generation (an export touches every row once).
        tail = (
            f',"use_rtc_proxy":{_BOOL[r() < 0.05]},"network_type":"{network}",'
            f'"protocol":"{PROTOCOLS[int(r() * len(PROTOCOLS))]}",'
            f'"audio":{_BOOL[r() < 0.8]},"video":{_BOOL[r() < 0.5]},"sharing":{_BOOL[r() < 0.1]},'
            f'"join_time":"{_feishu_time(join, person.tz)}",'
            f'"leave_time":"{_feishu_time(leave, person.tz)}",'
            f'"time_in_meeting":"{format_duration(timedelta(seconds=leave - join))}",'
            f'"leave_reason":{_REASON_JSON[reason]},"accept_status":{status}'
            f"{_ROLE_JSON[role]}}}"
        )
        rows.append(ParticipantRow(person, tail.encode(), role))
    return rows
