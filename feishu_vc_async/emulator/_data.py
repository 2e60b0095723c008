"""The emulator's data: a seeded, deterministic set of meetings, participants made lazily.

Every meeting is drawn from ``Random`` seeded by ``(seed, index)``, so a meeting's
participants can be rebuilt at any time without generating the others: building the
meeting list is cheap (a few draws per meeting), and the rows of one meeting are only
made when it is first read. Times are anchored at the start of the previous UTC day
(or at ``anchor``), so the same seed on the same day gives byte-identical data.
"""

from __future__ import annotations

import functools
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import msgspec

from ..models import (
    JSON_ENCODER,
    MeetingQuery,
    Participant,
    UserIdType,
    format_duration,
    format_feishu_time,
)

__all__ = ["Dataset", "MeetingInfo", "ParticipantRow"]

_DAY = 86_400

_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao"),
)  # fmt: skip
_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
    ("磊", "lei"), ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("军", "jun"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
    ("秀英", "xiuying"), ("建华", "jianhua"), ("晓东", "xiaodong"), ("子涵", "zihan"),
    ("浩然", "haoran"), ("思远", "siyuan"), ("雨桐", "yutong"), ("嘉怡", "jiayi"),
)  # fmt: skip
_LATIN_NAMES = ("kehan", "Alice Chen", "Bob Li", "Kenji Sato", "Priya Nair", "Tom Walker")
_DEPARTMENTS = (
    "研发部", "产品部", "设计部", "销售部", "市场部", "人力资源部", "财务部", "法务部",
    "客户成功部", "运维部", "数据平台部", "development",
)  # fmt: skip
_ROOMS = (
    "北京-望京-3F-长城厅", "上海-漕河泾-5F-外滩厅", "深圳-南山-12F-深圳湾", "杭州-西溪-2F-西湖厅",
    "成都-高新-8F-锦里", "广州-天河-6F-珠江厅", "新加坡-One North-Merlion", "东京-涩谷-Fuji",
)  # fmt: skip
_LOCATIONS = ("北京", "上海", "深圳", "杭州", "东莞", "广州", "成都", "武汉", "新加坡", "东京")
# (device, microphone, speaker, camera): consistent hardware per device kind.
_DEVICES = (
    ("windows", "麦克风阵列 (Realtek(R) Audio)", "扬声器 (Realtek(R) Audio)", "HD Camera"),
    ("windows", "耳机 (Jabra Evolve2 65)", "耳机 (Jabra Evolve2 65)", "Integrated Webcam"),
    ("mac", "MacBook Pro麦克风", "MacBook Pro扬声器", "FaceTime高清摄像头"),
    ("mac", "外置麦克风 (USB Audio Device)", "AirPods Pro", "Logitech BRIO"),
    ("iphone", "iPhone 麦克风", "iPhone 扬声器", "前置相机"),
    ("android", "手机麦克风", "手机扬声器", "前置摄像头"),
    ("ipad", "iPad 麦克风", "iPad 扬声器", "前置相机"),
    ("web", "默认 - 麦克风 (USB Audio)", "默认 - 扬声器 (USB Audio)", "HD Pro Webcam C920"),
    ("linux", "Built-in Audio Analog Stereo", "Built-in Audio Analog Stereo", "UVC Camera"),
)
_DEVICE_WEIGHTS = (30, 8, 22, 6, 14, 8, 4, 5, 3)
_ROOM_DEVICE = ("rooms", "会议室麦克风阵列", "会议室扬声器", "Poly Studio X50")
_APP_VERSIONS = (
    "7.12.3", "7.11.5", "7.10.2", "7.9.7", "6.11.14", "5.26.0-alpha.38", "7.13.0-beta.2",
)  # fmt: skip
_NETWORKS = ("wifi", "wifi", "wifi", "wired", "4g", "5g")
_PROTOCOLS = ("udp", "udp", "udp", "tcp")
_PUBLIC_PREFIX = (27, 36, 58, 101, 112, 116, 120, 180, 183, 220, 223)
_LEAVE_REASONS = (
    "主持人结束会议", "参会人主动离会", "参会人主动离会", "被主持人移出会议", "网络异常断开",
    "会议超时结束",
)  # fmt: skip
_OFFSETS = tuple(
    timezone(timedelta(minutes=m))
    for m in (480,) * 14 + (540, 0, -420, 330, 60, -300, 345)  # +08:00 mostly
)


_BOOL = ("false", "true")
_REASON_JSON = {reason: JSON_ENCODER.encode(reason).decode() for reason in _LEAVE_REASONS}
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

    person: _Person
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

    def _directory(self) -> tuple[tuple[_Person, ...], tuple[_Person, ...]]:
        return _directory(self.seed, self._directory_size)

    # --- rows -------------------------------------------------------------------

    def rows(self, meeting: MeetingInfo) -> list[ParticipantRow]:
        rows = self._rows.get(meeting.index)
        if rows is None:
            rng = random.Random(f"rows:{self.seed}:{meeting.index}")
            rows = _generate(meeting, rng, self._directory())
            self._rows[meeting.index] = rows
            if len(self._rows) > self._cache_size:
                self._rows.popitem(last=False)
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
        self._encoded[key] = found
        if len(self._encoded) > self._cache_size:
            self._encoded.popitem(last=False)
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


def _hex(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _ip_public(rng: random.Random) -> str:
    return (
        f"{rng.choice(_PUBLIC_PREFIX)}.{rng.randint(1, 254)}."
        f"{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


def _ip_internal(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return f"192.168.{rng.randint(0, 31)}.{rng.randint(2, 254)}"
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"


_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(slots=True, eq=False)
class _Person:
    """Who joins: a tenant member, an external guest, or a room. Fixed per seed."""

    name: str
    department: str
    phone: str | None
    email: str | None
    device: tuple[str, str, str, str]
    app_version: str
    public_ip: str
    internal_ip: str
    location: str
    external: bool
    tz: timezone
    open_id: str | None = None
    union_id: str | None = None
    user_id: str | None = None
    employee_id: str | None = None
    room_id: str | None = None
    _static: dict[tuple[UserIdType, bool], bytes] = field(default_factory=dict, repr=False)

    def user_id_as(self, id_type: UserIdType) -> str | None:
        if id_type is UserIdType.UNION_ID:
            return self.union_id
        if id_type is UserIdType.USER_ID:
            return self.user_id
        return self.open_id

    def static(self, id_type: UserIdType, permitted: bool) -> bytes:
        """This person's fixed fields as the start of a JSON object (no closing brace).

        ``user_id`` follows ``id_type``; ``employee_id``, and the tenant user id itself,
        only with the user-id scope.
        """
        key = (id_type, permitted)
        found = self._static.get(key)
        if found is None:
            uid = self.user_id_as(id_type)
            if id_type is UserIdType.USER_ID and not permitted:
                uid = None
            device, mic, speaker, camera = self.device
            found = JSON_ENCODER.encode(
                Participant(
                    participant_name=self.name,
                    department=self.department,
                    user_id=uid,
                    meeting_room_id=self.room_id,
                    employee_id=self.employee_id if permitted else None,
                    phone=self.phone,
                    email=self.email,
                    device=device,
                    app_version=self.app_version,
                    public_ip=self.public_ip,
                    internal_ip=self.internal_ip,
                    location=self.location,
                    microphone=mic,
                    speaker=speaker,
                    camera=camera,
                    is_external=self.external,
                )
            )[:-1]
            self._static[key] = found
        return found


def _person(rng: random.Random) -> _Person:
    external = rng.random() < 0.1
    if rng.random() < 0.05:
        name = rng.choice(_LATIN_NAMES)
        romanized = name.lower().replace(" ", ".")
    else:
        (sur, sur_py), (given, given_py) = rng.choice(_SURNAMES), rng.choice(_GIVEN)
        name, romanized = sur + given, f"{sur_py}{given_py}"
    domain = "partner-corp.com" if external else "example.cn"
    return _Person(
        name=name,
        department="外部联系人" if external else rng.choice(_DEPARTMENTS),
        phone=f"+86-1{rng.randint(30, 99)}{rng.randint(0, 99_999_999):08d}",
        email=f"{romanized}{rng.randint(1, 999)}@{domain}",
        device=rng.choices(_DEVICES, _DEVICE_WEIGHTS)[0],
        app_version=rng.choice(_APP_VERSIONS),
        public_ip=_ip_public(rng),
        internal_ip=_ip_internal(rng),
        location=rng.choice(_LOCATIONS),
        external=external,
        tz=rng.choice(_OFFSETS),
        open_id="ou_" + _hex(rng),
        union_id="on_" + _hex(rng),
        user_id="".join(rng.choice(_ALNUM) for _ in range(8)),
        employee_id=None if external else f"20{rng.randint(10, 25)}{rng.randint(0, 99999):05d}",
    )


def _room(rng: random.Random, n: int) -> _Person:
    site = _ROOMS[n % len(_ROOMS)]
    return _Person(
        name=site if n < len(_ROOMS) else f"{site}-{n // len(_ROOMS) + 1}",
        department="行政部",
        phone=None,
        email=None,
        device=_ROOM_DEVICE,
        app_version=rng.choice(_APP_VERSIONS),
        public_ip=_ip_public(rng),
        internal_ip=_ip_internal(rng),
        location=rng.choice(_LOCATIONS),
        external=False,
        tz=_OFFSETS[0],
        room_id="omm_" + _hex(rng),
    )


@functools.lru_cache(maxsize=8)
def _directory(seed: int, size: int) -> tuple[tuple[_Person, ...], tuple[_Person, ...]]:
    """The tenant's people and rooms: the same faces recur across meetings, as they do."""
    rng = random.Random(f"directory:{seed}")
    return tuple(_person(rng) for _ in range(size)), tuple(_room(rng, n) for n in range(48))


def _generate(
    meeting: MeetingInfo, rng: random.Random, directory: tuple[tuple[_Person, ...], ...]
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
            leave, reason = meeting.end, _LEAVE_REASONS[0]
        else:
            leave = min(meeting.end, join + 1 + int(r() * (meeting.end - join)))
            reason = _LEAVE_REASONS[1 + int(r() * (len(_LEAVE_REASONS) - 1))]
        accept = r()
        status = 1 if accept < 0.6 else 2 if accept < 0.65 else 3 if accept < 0.75 else 4
        network = "wired" if person.room_id else _NETWORKS[int(r() * len(_NETWORKS))]
        # Built as text: every value is a fixed ASCII token or pre-encoded JSON, and this
        # is the hot loop of generation (an export touches every row once).
        tail = (
            f',"use_rtc_proxy":{_BOOL[r() < 0.05]},"network_type":"{network}",'
            f'"protocol":"{_PROTOCOLS[int(r() * len(_PROTOCOLS))]}",'
            f'"audio":{_BOOL[r() < 0.8]},"video":{_BOOL[r() < 0.5]},"sharing":{_BOOL[r() < 0.1]},'
            f'"join_time":"{_feishu_time(join, person.tz)}",'
            f'"leave_time":"{_feishu_time(leave, person.tz)}",'
            f'"time_in_meeting":"{format_duration(timedelta(seconds=leave - join))}",'
            f'"leave_reason":{_REASON_JSON[reason]},"accept_status":{status}'
            f"{_ROLE_JSON[role]}}}"
        )
        rows.append(ParticipantRow(person, tail.encode(), role))
    return rows
