"""The meetings themselves: numbers, exact times, sizes and what meeting_list says of each.

A few seeded draws per meeting and no participant rows, so even 10,000 meetings are
quick to make. Two streams: ``meetings:{seed}`` draws what existed before meeting_list
(kinds, numbers, times, sizes: unchanged for a seed), ``meeting-facts:{seed}`` the rest
(topic, type, organizer, flags, shared numbers, external and ongoing meetings), and
``meetings-ending:{seed}`` the meetings that end while the emulator serves, so the others
are the same with or without them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import MeetingQuery, MeetingStatus

__all__ = ["MeetingInfo", "draw_ending", "draw_meetings", "webinar_guests"]

_DAY = 86_400
VIDEO_MEETING = 2
LOCAL_SCREEN_SHARE = 3
WEBINAR_SUBTYPE = 8
# meeting_subtype of a video meeting, weighted; 0 is what an ordinary meeting carries.
_VIDEO_SUBTYPES = ((0, 3, 10, 4), (70, 15, 10, 5))
_SHARE_SUBTYPES = (1, 2)  # screen share, wired share
_TOPICS = (
    "周会", "项目评审", "需求评审会", "产品规划讨论", "1:1 沟通", "技术方案评审", "季度复盘",
    "客户沟通会", "招聘面试", "Sprint Planning", "All Hands", "Design Review", "数据平台周会",
    "运维值班交接", "销售周报会", "财务月度结算",
)  # fmt: skip
_WEBINAR_TOPICS = ("产品发布会", "开发者大会直播", "季度全员大会", "客户培训网络研讨会")
_SHARE_TOPICS = ("投屏分享", "会议室投屏")
_EXTERNAL_TOPICS = ("与合作伙伴的沟通会", "Partner sync", "外部客户会议")


def webinar_guests(size: int) -> int:
    """How many of a webinar's participants are guests (role "0"); the rest are viewers."""
    return max(1, size // 40)


@dataclass(frozen=True, slots=True)
class MeetingInfo:
    """One meeting of the emulator: identity, exact times, size, kind and listed facts."""

    index: int
    meeting_no: str
    start: int
    # Ended: the exact end. Ongoing: the moment its participant rows describe (the
    # emulator's clock when it was made; for a meeting that ends later, the clock's second
    # when it was asked for); the meeting itself has no end yet.
    end: int
    participant_count: int
    webinar: bool
    ongoing: bool
    external: bool
    instance_id: str
    topic: str
    meeting_type: int
    meeting_subtype: int
    host_slot: int  # picks the organizer among the tenant's members (external: guests)
    devices: int
    audio: bool
    video: bool
    sharing: bool
    recording: bool
    telephone: bool
    has_related_document: bool
    ai_note: bool

    @property
    def query(self) -> MeetingQuery:
        return MeetingQuery(
            meeting_no=self.meeting_no,
            meeting_start_time=self.start,
            meeting_end_time=self.end,
            meeting_status=MeetingStatus.ONGOING if self.ongoing else MeetingStatus.ENDED,
        )

    @property
    def viewers(self) -> int | None:
        """A webinar's audience (role "3"); ``None`` for other meetings."""
        if not self.webinar:
            return None
        return self.participant_count - webinar_guests(self.participant_count)


def _long_tail_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.85:
        return min(30, 2 + int(rng.expovariate(1 / 6)))
    if roll < 0.98:
        return rng.randint(31, 300)
    return rng.randint(301, 900)


@dataclass(slots=True)
class _Times:
    number: int
    start: int
    end: int
    size: int


def draw_meetings(
    count: int,
    *,
    seed: int,
    anchor: int,
    now: float,
    webinars: int,
    webinar_size: int,
    ongoing: int,
    recurring: int,
    external: int,
) -> list[MeetingInfo]:
    """``count`` ended meetings (indices ``0..count-1``), then ``ongoing`` ongoing ones."""
    rng = random.Random(f"meetings:{seed}")
    webinar_idx = set(rng.sample(range(count), min(webinars, count)))
    numbers = rng.sample(range(100_000_000, 1_000_000_000), count)
    times: list[_Times] = []
    for i, number in enumerate(numbers):
        span = rng.randint(10 * 60, 4 * 3600)
        if i in webinar_idx:
            span = rng.randint(3600, 3 * 3600)
        end = anchor - rng.randint(0, 30 * _DAY)
        size = webinar_size if i in webinar_idx else _long_tail_size(rng)
        times.append(_Times(number, end - span, end, size))

    facts = random.Random(f"meeting-facts:{seed}")
    hosts = [facts.getrandbits(32) for _ in range(count)]
    regular = [i for i in range(count) if i not in webinar_idx]
    shared = _share_numbers(facts, times, hosts, regular, recurring)
    unique = [i for i in regular if i not in shared]
    external_idx = set(facts.sample(unique, min(external, len(unique))))

    snapshot = int(now)
    used = {t.number for t in times}
    for _ in range(ongoing):
        number = facts.randrange(100_000_000, 1_000_000_000)
        while number in used:
            number = facts.randrange(100_000_000, 1_000_000_000)
        used.add(number)
        start = snapshot - facts.randint(5 * 60, 90 * 60)
        times.append(_Times(number, start, snapshot, _long_tail_size(facts)))
        hosts.append(facts.getrandbits(32))

    instance_ids: set[str] = set()
    meetings: list[MeetingInfo] = []
    for i, t in enumerate(times):
        meetings.append(
            _facts(
                facts,
                i,
                t,
                hosts[i],
                _instance_id(facts, instance_ids),
                webinar=i in webinar_idx,
                ongoing=i >= count,
                external=i in external_idx,
            )
        )
    return meetings


def draw_ending(
    ends: Sequence[int], *, seed: int, snapshot: int, taken: Sequence[MeetingInfo]
) -> list[MeetingInfo]:
    """One meeting ending at each of ``ends``, as it will be once ended (indices after
    ``taken``'s): internal, not a webinar, started 5 to 90 minutes before ``snapshot``
    (the clock when the emulator was made), with a number and instance id no meeting of
    ``taken`` has."""
    if not ends:
        return []
    rng = random.Random(f"meetings-ending:{seed}")
    numbers = {m.meeting_no for m in taken}
    instance_ids = {m.instance_id for m in taken}
    meetings: list[MeetingInfo] = []
    for k, end in enumerate(ends):
        number = rng.randrange(100_000_000, 1_000_000_000)
        while f"{number:09d}" in numbers:
            number = rng.randrange(100_000_000, 1_000_000_000)
        numbers.add(f"{number:09d}")
        start = snapshot - rng.randint(5 * 60, 90 * 60)
        times = _Times(number, start, end, _long_tail_size(rng))
        host = rng.getrandbits(32)
        instance_id = _instance_id(rng, instance_ids)
        meetings.append(
            _facts(
                rng,
                len(taken) + k,
                times,
                host,
                instance_id,
                webinar=False,
                ongoing=False,
                external=False,
            )
        )
    return meetings


def _instance_id(rng: random.Random, taken: set[str]) -> str:
    """A 19-digit ``meeting_instance_id`` not in ``taken`` (and now added to it)."""
    instance_id = f"7{rng.randrange(10**18):018d}"
    while instance_id in taken:
        instance_id = f"7{rng.randrange(10**18):018d}"
    taken.add(instance_id)
    return instance_id


def _share_numbers(
    rng: random.Random, times: list[_Times], hosts: list[int], regular: list[int], k: int
) -> set[int]:
    """Give up to ``k`` regular meetings the number (and organizer) of another one, at a
    time that does not overlap any meeting already holding it: personal meeting numbers.
    Returns every index whose number is now shared."""
    reusers = rng.sample(regular, min(k, len(regular) // 2))
    taken = set(reusers)
    owners = [i for i in regular if i not in taken]
    holders: dict[int, list[int]] = {}
    shared: set[int] = set()
    for i in reusers:
        for _ in range(8):
            j = rng.choice(owners)
            group = holders.setdefault(j, [j])
            if all(times[m].end < times[i].start or times[m].start > times[i].end for m in group):
                times[i].number = times[j].number
                hosts[i] = hosts[j]
                group.append(i)
                shared.update(group)
                break
    return shared


def _facts(
    rng: random.Random,
    index: int,
    t: _Times,
    host_slot: int,
    instance_id: str,
    *,
    webinar: bool,
    ongoing: bool,
    external: bool,
) -> MeetingInfo:
    r = rng.random
    meeting_type = VIDEO_MEETING
    if webinar:
        topic, subtype = rng.choice(_WEBINAR_TOPICS), WEBINAR_SUBTYPE
    elif not external and not ongoing and r() < 0.06:
        meeting_type = LOCAL_SCREEN_SHARE
        topic, subtype = rng.choice(_SHARE_TOPICS), rng.choice(_SHARE_SUBTYPES)
    else:
        topic = rng.choice(_EXTERNAL_TOPICS if external else _TOPICS)
        subtype = rng.choices(*_VIDEO_SUBTYPES)[0]
    sharing = meeting_type == LOCAL_SCREEN_SHARE or r() < 0.4
    return MeetingInfo(
        index=index,
        meeting_no=f"{t.number:09d}",
        start=t.start,
        end=t.end,
        participant_count=t.size,
        webinar=webinar,
        ongoing=ongoing,
        external=external,
        instance_id=instance_id,
        topic=topic,
        meeting_type=meeting_type,
        meeting_subtype=subtype,
        host_slot=host_slot,
        # Some join from a second device (a phone for audio, a room for the screen).
        devices=t.size + int(t.size * r() * 0.1),
        audio=r() < 0.95,
        video=meeting_type == VIDEO_MEETING and r() < 0.7,
        sharing=sharing,
        recording=r() < 0.15,
        telephone=r() < 0.05,
        has_related_document=r() < 0.2,
        ai_note=r() < 0.1,
    )
