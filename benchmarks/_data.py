"""Realistic participant_list page bodies for the decode benchmark.

Rows follow the reference example (all 28 fields, Chinese text where the platform
shows it, the platform's time strings) with values varied per row, so no decoder gets
an easy ride from repeated strings.
"""

from __future__ import annotations

import json
import random
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta, timezone

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH, TENANT_TOKEN_PATH

_NAMES = ["kehan", "李雷", "韩梅梅", "Alice Zhang", "王小明", "Bob", "陈静", "Lin Wei", "赵云"]
_DEPTS = ["development", "研发部", "市场部", "Sales", "财务部", "运营中心", "HR"]
_DEVICES = ["windows", "mac", "android", "ios", "linux", "web", "rooms"]
_NETS = ["wifi", "4g", "5g", "wired", "unknown"]
_PROTOS = ["udp", "tcp", "quic"]
_MICS = ["麦克风阵列 (Realtek(R) Audio)", "MacBook Pro Microphone", "AirPods Pro", "Default"]
_SPEAKERS = ["扬声器 (Realtek(R) Audio)", "MacBook Pro Speakers", "AirPods Pro", "HDMI"]
_CAMS = ["HD Camera", "FaceTime HD Camera", "Logitech C920", "Integrated Webcam"]
_CITIES = ["东莞", "北京", "上海", "深圳", "杭州", "Singapore", "Tokyo"]
_REASONS = ["主持人结束会议", "用户主动离开", "网络断开", "被移出会议"]
_TZ8 = timezone(timedelta(hours=8))


def _time(value: datetime) -> str:
    return f"{value:%Y.%m.%d %H:%M:%S} (GMT+08:00)"


def participant_row(rng: random.Random, start: datetime) -> dict[str, object]:
    joined = start + timedelta(seconds=rng.randint(0, 1800))
    stay = rng.randint(30, 3 * 3600)
    left = joined + timedelta(seconds=stay)
    h, rest = divmod(stay, 3600)
    mi, s = divmod(rest, 60)
    uid = f"{rng.getrandbits(32):08x}"
    return {
        "participant_name": rng.choice(_NAMES),
        "department": rng.choice(_DEPTS),
        "user_id": f"ou_{rng.getrandbits(128):032x}",
        "meeting_room_id": f"omm_{rng.getrandbits(128):032x}" if rng.random() < 0.2 else "",
        "employee_id": str(rng.randint(200000000, 299999999)),
        "phone": f"021-{rng.randint(100000, 999999)}",
        "email": f"user{uid}@example.com",
        "device": rng.choice(_DEVICES),
        "app_version": f"7.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        "public_ip": f"27.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "internal_ip": f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "use_rtc_proxy": rng.random() < 0.1,
        "location": rng.choice(_CITIES),
        "network_type": rng.choice(_NETS),
        "protocol": rng.choice(_PROTOS),
        "microphone": rng.choice(_MICS),
        "speaker": rng.choice(_SPEAKERS),
        "camera": rng.choice(_CAMS),
        "audio": rng.random() < 0.9,
        "video": rng.random() < 0.6,
        "sharing": rng.random() < 0.1,
        "join_time": _time(joined),
        "leave_time": _time(left),
        "time_in_meeting": f"{h:02d}:{mi:02d}:{s:02d}",
        "leave_reason": rng.choice(_REASONS),
        "accept_status": rng.randint(1, 4),
        "is_external": rng.random() < 0.15,
        "webinar_user_role": rng.choice(["0", "3"]),
    }


def page_body(participants: int, *, seed: int = 0, has_more: bool = True) -> bytes:
    """One successful participant_list answer with ``participants`` rows, as wire bytes."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 14, 9, 30, tzinfo=UTC).astimezone(_TZ8)
    data: dict[str, object] = {
        "participants": [participant_row(rng, start) for _ in range(participants)],
        "has_more": has_more,
    }
    if has_more:
        data["page_token"] = str(participants)
    body = {"code": 0, "msg": "success", "data": data}
    return json.dumps(body, ensure_ascii=False).encode()


def emulator_page_bodies(sizes: list[int]) -> dict[int, bytes]:
    """First pages of ``page_size`` n of a large emulator meeting, as the wire carried them."""
    from ._emulator_proc import EmulatorProcess

    with EmulatorProcess(meetings=60, seed=23) as emu:
        meeting = max(emu.meetings, key=lambda m: m.participants)
        if meeting.participants < max(sizes):
            raise RuntimeError("the emulator generated no meeting large enough")
        token_req = urllib.request.Request(
            emu.base_url + TENANT_TOKEN_PATH,
            data=json.dumps({"app_id": emu.app_id, "app_secret": emu.app_secret}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(token_req) as resp:  # loopback only
            token = json.loads(resp.read())["tenant_access_token"]
        bodies: dict[int, bytes] = {}
        for n in sizes:
            params = meeting.query.to_params() | {"page_size": str(n)}
            url = f"{emu.base_url}{PARTICIPANT_LIST_PATH}?{urllib.parse.urlencode(params)}"
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req) as resp:
                bodies[n] = resp.read()
        return bodies


def realistic_page_bodies(sizes: list[int]) -> tuple[dict[int, bytes], str]:
    """Page bodies and where their rows came from: the emulator's generator, served over
    HTTP; hand-built rows if the emulator cannot run."""
    try:
        return emulator_page_bodies(sizes), "pages served by the emulator (its data generator)"
    except Exception as exc:  # the benchmark still runs, and says which rows it used
        bodies = {n: page_body(n, seed=n) for n in sizes}
        return bodies, f"hand-built rows after the reference example (emulator failed: {exc})"
