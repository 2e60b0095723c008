"""An export killed and run again at once does not go over the limit with the requests
its predecessor sent: the command's first request of each API waits out what a process
paced as it was may still hold in reserve (``VCClient.assume_recent_requests``).

The export runs as a real subprocess against an emulator served from this test's event
loop, whose meeting_list gateway allows 3 requests in any 4 s: the kill lands right
after the listing's second answer, and the second run starts within the same window.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from feishu_vc_async._constants import MEETING_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.ratelimit import RateLimit
from tests._cli import by_meeting, ground_truth, read_jsonl

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LISTING = RateLimit(3, 4.0)


def _argv(emu: Emulator, since: int, until: int, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "feishu_vc_async", "export",
        "--since", str(since), "--until", str(until), "--out", str(out),
        "--base-url", emu.base_url, "--rate-limit", "1000/1s",
        "--meeting-list-rate-limit", str(LISTING), "--progress", "none", "--resume",
    ]  # fmt: skip


def _listing_answers(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path == MEETING_LIST_PATH and r.status == 200)


async def test_an_export_killed_and_run_again_at_once_draws_no_429(tmp_path: Path) -> None:
    data = MeetingData(webinars=0)
    async with Emulator(
        meetings=250, seed=41, rate_limit=None, meeting_list_rate_limit=LISTING, data=data
    ) as emu:
        since = min(q.meeting_start_time for q in emu.meetings)
        until = max(q.meeting_start_time for q in emu.meetings)
        out = tmp_path / "out.jsonl"
        env = {"FEISHU_APP_ID": emu.app_id, "FEISHU_APP_SECRET": emu.app_secret, "PATH": "/usr/bin"}
        first = subprocess.Popen(_argv(emu, since, until, out), env=env)
        try:
            with anyio.fail_after(60):
                while _listing_answers(emu) < 2 and first.poll() is None:
                    await anyio.sleep(0.01)
            first.send_signal(signal.SIGKILL)
        finally:
            first.wait()
        assert first.returncode == -signal.SIGKILL  # killed while listing, not finished
        second = subprocess.Popen(_argv(emu, since, until, out), env=env)
        with anyio.fail_after(120):
            while second.poll() is None:
                await anyio.sleep(0.05)
        refused = [r for r in emu.requests if r.path == MEETING_LIST_PATH and r.status == 429]
        listed = emu.listed_meetings(since, until)
        truth = ground_truth(emu, [m.query() for m in listed])
    assert second.returncode == 0
    assert refused == []
    assert emu.max_in_window(LISTING.period, path=MEETING_LIST_PATH) <= LISTING.requests
    assert by_meeting(read_jsonl(out)) == truth
