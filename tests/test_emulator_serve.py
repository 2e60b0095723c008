"""The `emulator` command's run(): serves until SIGTERM and prints how to reach it."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys

import aiohttp
import anyio
import pytest

from feishu_vc_async._constants import (
    MEETING_LIST_PATH,
    PARTICIPANT_LIST_PATH,
    TENANT_TOKEN_PATH,
)
from feishu_vc_async.emulator._serve import add_arguments

_SCRIPT = (
    "import argparse, sys\n"
    "from feishu_vc_async.emulator._serve import add_arguments, run\n"
    "p = argparse.ArgumentParser(); add_arguments(p)\n"
    "sys.exit(run(p.parse_args(sys.argv[1:])))\n"
)


def test_arguments_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.port, args.meetings, args.seed, args.window) == (8787, 200, 7, "sliding")
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


async def test_run_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-c", _SCRIPT, "--port", "0", "--meetings", "30", "--seed", "7"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        with anyio.fail_after(20):
            while not any("Press Ctrl-C" in line for line in lines):
                line = await anyio.to_thread.run_sync(proc.stdout.readline)
                assert line, "the emulator exited early"
                lines.append(line.decode())
        text = "".join(lines)
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
        with anyio.fail_after(10):
            code = await anyio.to_thread.run_sync(proc.wait)
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
