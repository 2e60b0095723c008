"""The emulator's data: a seeded, deterministic set of meetings, participants made lazily.

Every meeting is drawn from ``Random`` seeded by ``(seed, index)``, so a meeting's
participants can be rebuilt at any time without generating the others: building the
meeting list is cheap (a few draws per meeting), and the rows of one meeting are only
made when it is first read. Times are anchored at the start of the previous UTC day
(or at ``anchor``), so the same seed on the same day gives byte-identical data.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

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
    """A participant with every id it can be shown under; ``base`` has no ids set."""

    base: Participant
    open_id: str | None
    union_id: str | None
    user_id: str | None
    employee_id: str | None
    room_id: str | None

    def user_id_as(self, id_type: UserIdType) -> str | None:
        if id_type is UserIdType.UNION_ID:
            return self.union_id
        if id_type is UserIdType.USER_ID:
            return self.user_id
        return self.open_id

    def view(self, id_type: UserIdType, permitted: bool) -> Participant:
        """What a caller asking with ``id_type`` sees, with or without the user-id scope."""
        uid = self.user_id_as(id_type)
        if id_type is UserIdType.USER_ID and not permitted:
            uid = None
        return msgspec.structs.replace(
            self.base,
            user_id=uid,
            employee_id=self.employee_id if permitted else None,
            meeting_room_id=self.room_id,
        )


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

    # --- rows -------------------------------------------------------------------

    def rows(self, meeting: MeetingInfo) -> list[ParticipantRow]:
        rows = self._rows.get(meeting.index)
        if rows is None:
            rows = _generate(meeting, random.Random(f"rows:{self.seed}:{meeting.index}"))
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
            rows = [r for r in rows if r.base.webinar_user_role == webinar_role]
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
        found = [JSON_ENCODER.encode(r.view(id_type, permitted)) for r in rows]
        self._encoded[key] = found
        if len(self._encoded) > self._cache_size:
            self._encoded.popitem(last=False)
        return found


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


def _generate(meeting: MeetingInfo, rng: random.Random) -> list[ParticipantRow]:
    rows: list[ParticipantRow] = []
    span = meeting.end - meeting.start
    host_end = rng.random() < 0.7
    guests = max(1, meeting.participant_count // 40) if meeting.webinar else 0
    for n in range(meeting.participant_count):
        is_room = not meeting.webinar and n > 0 and rng.random() < 0.05
        join = meeting.start + (0 if n == 0 else int(rng.random() ** 3 * span * 0.8))
        if host_end and rng.random() < 0.75:
            leave = meeting.end
            reason = "主持人结束会议"
        else:
            leave = min(meeting.end, join + 1 + int(rng.random() * (meeting.end - join)))
            reason = rng.choice(_LEAVE_REASONS[1:])
        tz = rng.choice(_OFFSETS)
        joined = datetime.fromtimestamp(join, tz)
        left = datetime.fromtimestamp(leave, tz)
        external = not is_room and rng.random() < 0.1
        if is_room:
            device, mic, speaker, camera = _ROOM_DEVICE
            name = rng.choice(_ROOMS)
            department = "行政部"
        else:
            device, mic, speaker, camera = rng.choices(_DEVICES, _DEVICE_WEIGHTS)[0]
            if rng.random() < 0.05:
                name = rng.choice(_LATIN_NAMES)
                romanized = name.lower().replace(" ", ".")
            else:
                (sur, sur_py), (given, given_py) = rng.choice(_SURNAMES), rng.choice(_GIVEN)
                name, romanized = sur + given, f"{sur_py}{given_py}"
            department = "外部联系人" if external else rng.choice(_DEPARTMENTS)
        domain = "partner-corp.com" if external else "example.cn"
        role: str | None = None
        if meeting.webinar:
            role = "0" if n < guests else "3"
        base = Participant(
            participant_name=name,
            department=department,
            phone=None
            if is_room
            else f"+86-1{rng.randint(30, 99)}{rng.randint(0, 99_999_999):08d}",
            email=None if is_room else f"{romanized}{rng.randint(1, 999)}@{domain}",
            device=device,
            app_version=rng.choice(_APP_VERSIONS),
            public_ip=_ip_public(rng),
            internal_ip=_ip_internal(rng),
            use_rtc_proxy=rng.random() < 0.05,
            location=rng.choice(_LOCATIONS),
            network_type="wired" if is_room else rng.choice(_NETWORKS),
            protocol=rng.choice(_PROTOCOLS),
            microphone=mic,
            speaker=speaker,
            camera=camera,
            audio=rng.random() < 0.8,
            video=rng.random() < 0.5,
            sharing=rng.random() < 0.1,
            join_time=format_feishu_time(joined),
            leave_time=format_feishu_time(left),
            time_in_meeting=format_duration(left - joined),
            leave_reason=reason,
            accept_status=rng.choices((1, 2, 3, 4), (60, 5, 10, 25))[0],
            is_external=external,
            webinar_user_role=role,
        )
        if is_room:
            rows.append(ParticipantRow(base, None, None, None, None, "omm_" + _hex(rng)))
        else:
            uid = "".join(rng.choice(_ALNUM) for _ in range(8))
            rows.append(
                ParticipantRow(
                    base,
                    open_id="ou_" + _hex(rng),
                    union_id="on_" + _hex(rng),
                    user_id=uid,
                    employee_id=None
                    if external
                    else f"20{rng.randint(10, 25)}{rng.randint(0, 99999):05d}",
                    room_id=None,
                )
            )
    return rows
