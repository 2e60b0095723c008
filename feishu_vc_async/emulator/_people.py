"""The tenant's people and rooms, drawn once per seed: the faces recurring across meetings.

Everything a participant row has that does not change between meetings (names,
department, contact, device, network addresses, ids, time zone) lives here, so a
meeting's rows only draw what happens in that meeting.
"""

from __future__ import annotations

import functools
import random
import threading
from dataclasses import dataclass, field
from datetime import timedelta, timezone

from ..models import JSON_ENCODER, Participant, UserIdType

__all__ = ["LEAVE_REASONS", "NETWORKS", "OFFSETS", "PROTOCOLS", "Person", "directory"]

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
NETWORKS = ("wifi", "wifi", "wifi", "wired", "4g", "5g")
PROTOCOLS = ("udp", "udp", "udp", "tcp")
_PUBLIC_PREFIX = (27, 36, 58, 101, 112, 116, 120, 180, 183, 220, 223)
LEAVE_REASONS = (
    "主持人结束会议", "参会人主动离会", "参会人主动离会", "被主持人移出会议", "网络异常断开",
    "会议超时结束",
)  # fmt: skip
OFFSETS = tuple(
    timezone(timedelta(minutes=m))
    for m in (480,) * 14 + (540, 0, -420, 330, 60, -300, 345)  # +08:00 mostly
)


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
class Person:
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


def _person(rng: random.Random) -> Person:
    external = rng.random() < 0.1
    if rng.random() < 0.05:
        name = rng.choice(_LATIN_NAMES)
        romanized = name.lower().replace(" ", ".")
    else:
        (sur, sur_py), (given, given_py) = rng.choice(_SURNAMES), rng.choice(_GIVEN)
        name, romanized = sur + given, f"{sur_py}{given_py}"
    domain = "partner-corp.com" if external else "example.cn"
    return Person(
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
        tz=rng.choice(OFFSETS),
        open_id="ou_" + _hex(rng),
        union_id="on_" + _hex(rng),
        user_id="".join(rng.choice(_ALNUM) for _ in range(8)),
        employee_id=None if external else f"20{rng.randint(10, 25)}{rng.randint(0, 99999):05d}",
    )


def _room(rng: random.Random, n: int) -> Person:
    site = _ROOMS[n % len(_ROOMS)]
    return Person(
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
        tz=OFFSETS[0],
        room_id="omm_" + _hex(rng),
    )


_DIRECTORY_LOCK = threading.Lock()


def directory(seed: int, size: int) -> tuple[tuple[Person, ...], tuple[Person, ...]]:
    """The tenant's people and rooms: the same faces recur across meetings, as they do.

    Built once per (seed, size) even when several worker threads ask at the same time.
    """
    with _DIRECTORY_LOCK:
        return _directory(seed, size)


@functools.lru_cache(maxsize=8)
def _directory(seed: int, size: int) -> tuple[tuple[Person, ...], tuple[Person, ...]]:
    rng = random.Random(f"directory:{seed}")
    return tuple(_person(rng) for _ in range(size)), tuple(_room(rng, n) for n in range(48))
