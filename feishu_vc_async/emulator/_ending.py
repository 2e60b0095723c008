"""Meetings that end while the emulator serves (``MeetingsEnding``), read from the clock.

Each is drawn once, when the emulator is made, as the ended meeting it becomes: times,
size, facts, and participant rows made on first read like any ended meeting's. Until the
wall clock reaches its end it is shown as ongoing *at the clock's current second*: the
rows of those who had joined by then, in join order, whoever leaves later still in (no
``leave_time`` or ``leave_reason``, ``time_in_meeting`` up to that second), and
meeting_list's count, devices and duration so far. From its end on it is that ended
meeting in every respect. Nothing runs in the background: every answer asks the clock,
so a test moves a fake clock and the meetings end, and the same readings of the clock
give the same bytes.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import msgspec

from .._timeparse import format_duration, parse_feishu_time
from .._validate import non_negative_int, positive_seconds
from ..models import JSON_ENCODER, Participant
from ._meetings import MeetingInfo
from ._options import MeetingsEnding

__all__ = ["LATEST_END", "EndingMeetings", "end_seconds"]

# How long after the emulator is made the last meeting may end: one that started up to
# 90 minutes before then still spans less than the day participant_list accepts (126006).
LATEST_END = 22 * 3600

# A row's per-meeting members (its tail) form a JSON object of their own; decoded into
# the participant model, they encode again in the generator's order of members.
_TAIL_DECODER = msgspec.json.Decoder(Participant)


def end_seconds(option: MeetingsEnding, now: float) -> list[int]:
    """When each meeting of ``option`` ends (unix seconds), in the option's order:
    ``ValueError`` naming the field of a bad value."""
    count = non_negative_int("MeetingsEnding.count", option.count)
    every = positive_seconds("MeetingsEnding.every", option.every)
    at: object = option.at  # typed a sequence, but a caller may pass anything
    if not isinstance(at, Sequence) or isinstance(at, str | bytes):
        raise ValueError(f"MeetingsEnding.at={at!r}: must be a sequence of seconds")
    if at and count:
        raise ValueError(
            f"MeetingsEnding: count={count} and at={at!r} both given: give count "
            "(with every) or at, not both"
        )
    offsets = [positive_seconds(f"MeetingsEnding.at[{i}]", s) for i, s in enumerate(at)]
    for i, offset in enumerate(offsets):
        if offset > LATEST_END:
            raise ValueError(
                f"MeetingsEnding.at[{i}]={at[i]!r}: must be at most {LATEST_END} seconds "
                "(a meeting lasts at most a day)"
            )
    if count * every > LATEST_END:
        raise ValueError(
            f"MeetingsEnding.every={option.every!r}: the last of count={count} meetings "
            f"would end {count * every:g} seconds after the start, more than {LATEST_END} "
            "(a meeting lasts at most a day)"
        )
    offsets = offsets or [every * (k + 1) for k in range(count)]
    # The platform's times are whole seconds: the first at or after the instant.
    return [math.ceil(now + offset) for offset in offsets]


class EndingMeetings:
    """The meetings of a ``MeetingsEnding`` (``finals``: as they end), each in its form at
    the clock's current second. ``tails`` gives the per-meeting JSON of a meeting's final
    participant rows (``ParticipantRow.tail``), in their order."""

    def __init__(
        self,
        finals: list[MeetingInfo],
        clock: Callable[[], float],
        tails: Callable[[MeetingInfo], list[bytes]],
    ) -> None:
        self.finals = sorted(finals, key=lambda m: (m.end, m.index))
        self._ends = [m.end for m in self.finals]
        self._by_index = {m.index: m for m in finals}
        self._clock, self._tails = clock, tails
        self._timelines: dict[int, _Timeline] = {}
        self.longest = max((m.end - m.start for m in finals), default=0)

    def ended(self) -> list[MeetingInfo]:
        """Those whose end the clock has reached, by end."""
        return self.finals[: bisect.bisect_right(self._ends, int(self._clock()))]

    def ongoing(self) -> list[MeetingInfo]:
        """The others, each as it is now, by end."""
        now = int(self._clock())
        later = self.finals[bisect.bisect_right(self._ends, now) :]
        return [self._view(m, now) for m in later]

    def current(self, meeting: MeetingInfo) -> MeetingInfo:
        """``meeting`` as it is now (any other meeting: itself)."""
        final = self._by_index.get(meeting.index)
        if final is None:
            return meeting
        now = int(self._clock())
        return final if now >= final.end else self._view(final, now)

    def final(self, meeting: MeetingInfo) -> MeetingInfo:
        """``meeting`` as it ends (any other meeting: itself): whose rows to generate."""
        return self._by_index.get(meeting.index, meeting)

    def is_view(self, meeting: MeetingInfo) -> bool:
        """Whether ``meeting`` is one of these shown as ongoing (its rows are a view of
        its final rows, not rows of their own)."""
        return meeting.ongoing and meeting.index in self._by_index

    def view_tails(self, meeting: MeetingInfo) -> list[bytes]:
        """The tails of a meeting shown as ongoing (:meth:`is_view`) at its moment: of
        its first final rows, those of people who had joined by then."""
        return self._timeline(self._by_index[meeting.index]).at(meeting.end)

    def _timeline(self, final: MeetingInfo) -> _Timeline:
        found = self._timelines.get(final.index)
        if found is None:
            found = self._timelines[final.index] = _Timeline(self._tails(final))
        return found

    def _view(self, final: MeetingInfo, now: int) -> MeetingInfo:
        # A clock set back before the start shows the meeting just begun, not a
        # negative duration.
        moment = max(now, final.start)
        joined = self._timeline(final).joined(moment)
        second_devices = (final.devices - final.participant_count) * joined
        return replace(
            final,
            end=moment,
            ongoing=True,
            participant_count=joined,
            devices=joined + second_devices // final.participant_count,
        )


class _Timeline:
    """A meeting's final row tails (in join order) with each one's join and leave second."""

    __slots__ = ("_joins", "_leaves", "_parsed", "_tails")

    def __init__(self, tails: list[bytes]) -> None:
        self._tails = tails
        self._parsed = [_TAIL_DECODER.decode(b"{" + tail[1:]) for tail in tails]
        self._joins = [_second(p.join_time) for p in self._parsed]
        self._leaves = [_second(p.leave_time) for p in self._parsed]

    def joined(self, moment: int) -> int:
        """How many had joined by ``moment``: the first rows, as rows go in join order."""
        return bisect.bisect_right(self._joins, moment)

    def at(self, moment: int) -> list[bytes]:
        view: list[bytes] = []
        for k in range(self.joined(moment)):
            tail = self._tails[k]
            if self._leaves[k] > moment:
                stay = timedelta(seconds=moment - self._joins[k])
                still_in = msgspec.structs.replace(
                    self._parsed[k],
                    leave_time=None,
                    leave_reason=None,
                    time_in_meeting=format_duration(stay),
                )
                tail = b"," + JSON_ENCODER.encode(still_in)[1:]
            view.append(tail)
        return view


def _second(text: str | None) -> int:
    parsed = parse_feishu_time(text)
    if parsed is None:  # the generator's own text: a bug, not an input
        raise AssertionError(f"a generated row's time does not parse: {text!r}")
    return int(parsed.timestamp())
