"""The emulator's generated data: deterministic, cheap, and realistic in every field."""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from feishu_vc_async._timeparse import format_duration, format_feishu_time
from feishu_vc_async.emulator import DefaultApp, Emulator, MeetingData
from feishu_vc_async.emulator._data import _duration, feishu_time
from feishu_vc_async.emulator._people import OFFSETS
from feishu_vc_async.models import PARTICIPANT_FIELDS, MeetingQuery, Participant, UserIdType


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = Emulator(meetings=40, seed=7), Emulator(meetings=40, seed=7)
    assert a.meetings == b.meetings
    assert (a.app_id, a.app_secret) == (b.app_id, b.app_secret)
    for q in a.meetings[:10]:
        assert a.participants(q) == b.participants(q)
    c = Emulator(meetings=40, seed=8)
    assert c.meetings != a.meetings
    anchored = Emulator(meetings=5, seed=7, data=MeetingData(anchor=1_700_000_000))
    assert all(q.meeting_end_time <= 1_700_000_000 for q in anchored.meetings)


def test_construction_is_cheap_and_lazy() -> None:
    # Cheap because lazy: making the meetings draws no participant and no directory of
    # people; a meeting's rows are made when it is first read.
    big = Emulator(meetings=10_000, seed=1, data=MeetingData(webinars=3))
    assert len(big.meetings) == 10_000
    assert len(big.webinars) == 3
    data = big._data
    assert not data._directory_ready
    assert not any(data.has_rows(m) for m in data.meetings)
    first = data.meetings[0]
    assert big.participants(big.meetings[0])  # read: made now
    assert data.has_rows(first)
    assert not any(data.has_rows(m) for m in data.meetings[1:])


def test_meetings_are_realistic() -> None:
    emu = Emulator(meetings=300, seed=2)
    now = time.time()
    numbers = [q.meeting_no for q in emu.meetings]
    # Personal meeting numbers recur (300 // 20 meetings reuse another's number), never
    # for two meetings at once: number and start identify a meeting.
    assert 300 - 15 <= len(set(numbers)) < 300
    assert len({(q.meeting_no, q.meeting_start_time) for q in emu.meetings}) == 300
    by_number: dict[str, list[MeetingQuery]] = {}
    for q in emu.meetings:
        by_number.setdefault(q.meeting_no, []).append(q)
    for held in by_number.values():
        held.sort(key=lambda q: q.meeting_start_time)
        assert all(a.meeting_end_time < b.meeting_start_time for a, b in itertools.pairwise(held))
    assert all(len(n) == 9 and n.isdigit() for n in numbers)
    for q in emu.meetings:
        q.validate()  # the library's own rules accept every generated meeting
        assert q.meeting_end_time < now
        assert 0 < q.meeting_end_time - q.meeting_start_time <= 86_400
    sizes = [emu.meeting_info(q).participant_count for q in emu.meetings]
    regular = [s for q, s in zip(emu.meetings, sizes, strict=True) if q not in emu.webinars]
    assert statistics.median(regular) <= 30
    assert min(regular) >= 2
    assert max(regular) > 100  # a long tail
    assert [emu.meeting_info(w).participant_count for w in emu.webinars] == [3000]
    assert Emulator(meetings=10, seed=2).webinars == []
    small = Emulator(meetings=10, seed=2, data=MeetingData(webinars=2, webinar_size=40))
    assert [len(small.participants(w)) for w in small.webinars] == [40, 40]


def test_participants_fill_every_field_consistently() -> None:
    emu = Emulator(meetings=60, seed=4, app=DefaultApp(user_id_permission=True))
    people: list[Participant] = []
    rooms: list[Participant] = []
    offsets: Counter[str] = Counter()
    accept: Counter[int | None] = Counter()
    roles: Counter[str | None] = Counter()
    for q in emu.meetings:
        webinar = q in emu.webinars
        for p in emu.participants(q):
            joined, left, duration = p.joined_at, p.left_at, p.duration
            assert joined is not None
            assert left is not None
            assert duration == left - joined
            assert duration >= timedelta(0)
            assert q.meeting_start_time <= joined.timestamp() <= q.meeting_end_time
            assert left.timestamp() <= q.meeting_end_time
            offsets[p.join_time[-10:] if p.join_time else ""] += 1
            accept[p.accept_status] += 1
            if webinar:
                roles[p.webinar_user_role] += 1
            else:
                assert p.webinar_user_role is None
            (rooms if p.meeting_room_id else people).append(p)
    assert offsets["GMT+08:00)"] > sum(offsets.values()) / 2
    assert len(offsets) >= 4
    assert set(accept) == {1, 2, 3, 4}
    assert set(roles) == {"0", "3"}
    assert roles["3"] > roles["0"] > 0
    assert rooms
    assert all(r.meeting_room_id and r.meeting_room_id.startswith("omm_") for r in rooms)
    assert all(r.user_id is None and r.employee_id is None for r in rooms)
    internal = [p for p in people if not p.is_external]
    assert any(p.is_external for p in people)
    unset = {f for p in internal for f in PARTICIPANT_FIELDS if getattr(p, f) is None}
    assert unset == {"meeting_room_id", "webinar_user_role"}
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in p.participant_name or "") for p in people)
    assert {p.device for p in people} >= {"windows", "mac", "iphone", "android"}
    assert all(p.user_id and p.user_id.startswith("ou_") for p in people)


def test_ground_truth_follows_the_query() -> None:
    emu = Emulator(meetings=30, seed=5, app=DefaultApp(user_id_permission=True))
    q = max(emu.meetings[:20], key=lambda m: len(emu.participants(m)))
    everyone = emu.participants(q.meeting_no)
    person = next(p for p in everyone if p.user_id)
    union = emu.participants(msgspec.structs.replace(q, user_id_type=UserIdType.UNION_ID))
    assert len(union) == len(everyone)
    assert all(p.user_id.startswith("on_") for p in union if p.user_id)
    filtered = emu.participants(msgspec.structs.replace(q, user_id=person.user_id))
    assert filtered == [person]


@given(
    st.integers(min_value=0, max_value=4_102_444_800),
    st.sampled_from(OFFSETS),
    st.integers(min_value=0, max_value=3 * 86_400),
)
def test_times_and_durations_are_the_models_formats(ts: int, tz: timezone, seconds: int) -> None:
    # Rows look their times up in tables and per-day caches instead of formatting each:
    # the text must be what the models' own formatters give.
    shown = datetime.fromtimestamp(ts, UTC).astimezone(tz)
    assert feishu_time(ts, tz) == format_feishu_time(shown)
    assert _duration(seconds) == format_duration(timedelta(seconds=seconds))
