"""The `emulator` command's run(): serves until SIGTERM and prints how to reach it."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import anyio
import pytest

from feishu_vc_async._constants import (
    MEETING_LIST_PATH,
    PARTICIPANT_LIST_PATH,
    TENANT_TOKEN_PATH,
)
from feishu_vc_async.cli.emulator import DEFAULT_ANCHOR, add_arguments
from feishu_vc_async.emulator import Clocks, Emulator, MeetingData

_SCRIPT = (
    "import argparse, sys\n"
    "from feishu_vc_async.cli.emulator import add_arguments, run\n"
    "p = argparse.ArgumentParser(); add_arguments(p)\n"
    "sys.exit(run(p.parse_args(sys.argv[1:])))\n"
)


def test_arguments_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.port, args.meetings, args.seed, args.window) == (8787, 200, 7, "sliding")
    assert args.anchor == DEFAULT_ANCHOR == "2026-01-01"
    assert (args.error_rate, args.reset_rate, args.truncate_rate, args.html_rate) == (0, 0, 0, 0)
    assert (args.error_status, args.revoke_after, args.write_meetings) == (500, None, None)
    assert str(args.rate_limit) == "100/60s"
    assert str(args.meeting_list_rate_limit) == "100/60s"
    assert (args.listing, args.ongoing) == ("start", None)
    args = parser.parse_args(["--rate-limit", "none", "--window", "fixed", "--port", "0"])
    assert args.rate_limit is None
    args = parser.parse_args(
        ["--meeting-list-rate-limit", "10/1s", "--listing", "overlap", "--ongoing", "3"]
    )
    assert (str(args.meeting_list_rate_limit), args.listing, args.ongoing) == (
        "10/1s",
        "overlap",
        3,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--rate-limit", "lots"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--listing", "middle"])


@contextlib.asynccontextmanager
async def _serving(argv: list[str]) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    """The emulator command in a subprocess, with its banner once it is ready; killed at
    the end if the test has not stopped it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        with anyio.fail_after(30):
            while not any("Press Ctrl-C" in line for line in lines):
                line = await anyio.to_thread.run_sync(proc.stdout.readline)
                assert line, "the emulator exited early"
                lines.append(line.decode())
        yield proc, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


async def test_run_serves_until_sigterm() -> None:
    argv = [sys.executable, "-c", _SCRIPT, "--port", "0", "--meetings", "30", "--seed", "7"]
    async with _serving(argv) as (proc, text):
        base_url = re.search(r"serving at (http://127\.0\.0\.1:\d+)", text)
        app_id = re.search(r"app_id:\s+(\S+)", text)
        secret = re.search(r"app_secret:\s+(\S+)", text)
        meeting = re.search(
            r"meeting_no=(\d+) meeting_start_time=(\d+) meeting_end_time=(\d+)", text
        )
        assert base_url
        assert app_id
        assert secret
        assert meeting
        async with aiohttp.ClientSession() as session:
            creds = {"app_id": app_id[1], "app_secret": secret[1]}
            async with session.post(base_url[1] + TENANT_TOKEN_PATH, json=creds) as r:
                token = (await r.json())["tenant_access_token"]
            params = {
                "meeting_no": meeting[1],
                "meeting_start_time": meeting[2],
                "meeting_end_time": meeting[3],
            }
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(
                base_url[1] + PARTICIPANT_LIST_PATH, params=params, headers=headers
            ) as r:
                assert r.status == 200
                assert (await r.json())["code"] == 0
            # meeting_list lists that meeting, by its start (--listing start, the default).
            listing = {
                "start_time": meeting[2],
                "end_time": meeting[2],
                "include_webinar": "true",
                "include_external_meetings": "true",
            }
            async with session.get(
                base_url[1] + MEETING_LIST_PATH, params=listing, headers=headers
            ) as r:
                assert r.status == 200
                listed = (await r.json())["data"]["meeting_list"]
                assert meeting[1] in [m["meeting_id"] for m in listed]
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            code = await anyio.to_thread.run_sync(proc.wait)
        assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--meetings", "-5"], "--meetings=-5: must be an integer from 0 to 1000000"),
        # Past the emulator's meeting numbers: once a ValueError from random.sample.
        (["--meetings", "10000000000"], "--meetings=10000000000: must be an integer from 0 to"),
        (["--error-rate", "2"], "--error-rate=2.0: must be a number from 0 to 1"),
        (["--ongoing", "-1"], "--ongoing=-1: must be an integer from 0 to 1000000"),
        (["--ongoing", "1000001"], "--ongoing=1000001: must be an integer from 0 to 1000000"),
        (["--webinars", "1000001"], "--webinars=1000001: must be an integer from 0 to 1000000"),
        (["--webinar-size", "0"], "--webinar-size=0: must be an integer from 1 to 100000"),
        (["--webinar-size", "100001"], "--webinar-size=100001: must be an integer from 1 to"),
        (["--token-lifetime", "0"], "--token-lifetime=0.0: must be a number of seconds above 0"),
        (["--latency", "-1"], "--latency=-1.0: must be a number of seconds, 0 or more"),
        (["--port", "70000"], "--port=70000: must be an integer from 0 to 65535"),
        (["--port", "-1"], "--port=-1: must be an integer from 0 to 65535"),
        (["--error-status", "404"], "--error-status=404: must be an integer from 500 to 599"),
        (["--revoke-after", "0"], "--revoke-after=0: must be an integer of at least 1"),
        (
            ["--reset-rate", "0.6", "--html-rate", "0.6"],
            "--error-rate + --reset-rate + --truncate-rate + --html-rate = 1.2: must be at most 1",
        ),
        (["--anchor", "2999-01-01"], "--anchor '2999-01-01': must not be in the future"),
        (["--anchor", "soon"], "--anchor 'soon': a date (2026-01-01) or a time: must be unix"),
        (["--deny-meeting", "12345"], "--deny-meeting '12345': must be a meeting number of 9"),
    ],
)
def test_bad_options_exit_2_naming_the_option_and_its_rule(argv: list[str], message: str) -> None:
    from feishu_vc_async.cli import main

    err = io.StringIO()
    assert main(["emulator", "--port", "0", *argv], stderr=err) == 2
    assert err.getvalue().startswith(f"feishu-vc emulator: error: {message}")
    assert "Traceback" not in err.getvalue()


def test_the_data_does_not_move_between_days() -> None:
    """The command's fixed anchor: the same meetings whatever day it runs."""
    anchor = int(datetime.fromisoformat(DEFAULT_ANCHOR).replace(tzinfo=UTC).timestamp())
    days = [anchor + 86_400 * n for n in (1, 40, 400)]
    seen = [
        Emulator(
            meetings=30, seed=7, data=MeetingData(anchor=anchor), clocks=Clocks(wall=lambda d=d: d)
        ).meetings
        for d in days
    ]
    assert seen[0] == seen[1] == seen[2]
    assert all(q.meeting_end_time < anchor for q in seen[0])


async def test_the_banner_and_the_meetings_file_are_enough_to_export(tmp_path: Path) -> None:
    """As a user would script it: the emulator with faults, a denied meeting and a user
    token; its meetings file and its `export ...` lines are all `feishu-vc export` needs."""
    anchor = int(datetime.fromisoformat(DEFAULT_ANCHOR).replace(tzinfo=UTC).timestamp())
    # The same data, for ground truth.
    twin = Emulator(meetings=8, seed=3, data=MeetingData(anchor=anchor))
    denied = twin.meetings[2]
    meetings = tmp_path / "meetings.jsonl"
    argv = [sys.executable, "-m", "feishu_vc_async", "emulator", "--port", "0"]
    argv += ["--meetings", "8", "--seed", "3", "--rate-limit", "none", "--fault-seed", "5"]
    argv += ["--truncate-rate", "0.1", "--reset-rate", "0.1", "--html-rate", "0.1"]
    argv += ["--deny-meeting", denied.meeting_no, "--write-meetings", str(meetings)]
    argv += ["--print-user-token", "--user-token-lifetime", "600"]
    async with _serving(argv) as (proc, banner):
        exports = re.findall(r"^  export (.+)$", banner, re.MULTILINE)
        assert len(exports) == 2, banner
        as_app, as_user = (dict(part.split("=", 1) for part in e.split()) for e in exports)
        assert as_app["FEISHU_BASE_URL"] == as_user["FEISHU_BASE_URL"]
        assert as_app["FEISHU_BASE_URL"].startswith("http://127.0.0.1:")
        assert as_user["FEISHU_ACCESS_TOKEN"].startswith("u-")
        assert "faults:" in banner
        assert stat.S_IMODE(meetings.stat().st_mode) == 0o600
        results = []
        for creds in (as_app, as_user):
            out = tmp_path / f"out-{len(results)}.csv"
            results.append(
                await anyio.run_process(
                    [
                        *(sys.executable, "-m", "feishu_vc_async", "export"),
                        *("--meetings", str(meetings), "--out", str(out)),
                        *("--max-retries", "10", "--rate-limit", "1000/1s", "--progress", "none"),
                    ],
                    env={"PATH": "/usr/bin:/bin", **creds},
                    check=False,
                )
            )
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            assert await anyio.to_thread.run_sync(proc.wait) == 0
    rows = {q.key: len(twin.participants(q)) for q in twin.meetings if q != denied}
    for n, result in enumerate(results):
        assert result.returncode == 1, result.stderr  # the denied meeting failed for good
        assert f"{denied.meeting_no}  code=121005" in result.stdout.decode()
        written = (tmp_path / f"out-{n}.csv").read_text().splitlines()
        assert len(written) == 1 + sum(rows.values())
