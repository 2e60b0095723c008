"""The official lark-oapi ``lark_oapi.ws.Client`` (in a process of its own:
``tests/_official_ws_listener.py``) connects to the emulator's long connection and
receives its events: the emulator speaks the platform's protocol as the official SDK
reads it (endpoint, protobuf frames, parts, pings, acks). lark-oapi takes the
emulator's http base URL as its ``domain`` and the ws:// URL the endpoint answers as
it is (websockets opens ws:// and wss:// alike): no workaround is needed."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding

WALL = 1_780_000_000.0
SCRIPT = Path(__file__).resolve().parent / "_official_ws_listener.py"


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def _read_events(stdout: asyncio.StreamReader, want: int) -> list[tuple[str, str]]:
    got: list[tuple[str, str]] = []
    while len(got) < want:
        line = (await stdout.readline()).decode()
        if not line:
            raise AssertionError(f"the official client exited after {len(got)} events")
        if line.startswith("EVENT "):
            _, event_id, number = line.split()
            got.append((event_id, number))
    return got


async def _until(check: object, what: str) -> None:
    async with asyncio.timeout(120):  # a safety limit: the wait is on what is observed
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_the_official_client_receives_the_emulators_events_in_parts() -> None:
    clock = FakeClock(WALL)
    events = EventDelivery(split_parts=2, ping_interval=0.2, reconnect_nonce=0.1)
    async with Emulator(
        meetings=5,
        seed=5,
        rate_limit=None,
        meeting_list_rate_limit=None,
        ending=MeetingsEnding(count=5, every=10),
        clocks=Clocks(wall=clock),
        events=events,
    ) as emu:
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            emu.base_url,
            emu.app_id,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(emu.app_secret.encode() + b"\n")
            await process.stdin.drain()
            process.stdin.close()
            await _until(lambda: len(emu.event_router.connections) == 1, "it connected")
            clock.now += 100
            got = await asyncio.wait_for(_read_events(process.stdout, 5), 120)
            await _until(lambda: len(emu.ws_acks) >= 5, "five acks")
            await _until(lambda: emu.long_connections.pings >= 1, "a ping")
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        told = emu.events.announced
        assert [e for e, _ in got] == [e.event_id for e in told]
        assert [n for _, n in got] == [e.meeting_no for e in told]
        assert Counter(a.event_id for a in emu.ws_acks if a.code == 200) == Counter(
            e.event_id for e in told
        )
        assert all(a.biz_rt is not None for a in emu.ws_acks)
