"""A server, proxy or gateway that answers badly: every failure bounded, named for what
it is, and nothing already fetched lost or written twice.

The emulator sits behind ``tests/_hostile_proxy.py``, which misbehaves for the meetings
a test names; the export runs as ``feishu-vc`` does (in-process, or a subprocess where
its memory is measured), and its output is compared with the emulator's ground truth.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export._input_writer import write_meetings_csv
from tests._cli import app_env, by_meeting, export_argv, ground_truth, read_jsonl, run_cli
from tests._hostile_proxy import HostileProxy

pytestmark = pytest.mark.anyio

# A small cap keeps an endless body's run short; real pages are far below it.
CAP = ["--max-answer-bytes", "2000000", "--max-retries", "1"]
# Runs the CLI as ``python -m feishu_vc_async`` and writes its own peak RSS (MB) to argv[1]:
# the kernel's high-water mark of this program (VmHWM), not getrusage's ru_maxrss, which
# a child keeps from the parent it was forked from (a test runner's size) across exec.
_PEAK_RSS = (
    "import json, re, runpy, sys\n"
    "out, sys.argv = sys.argv[1], ['feishu-vc', *sys.argv[2:]]\n"
    "try:\n"
    "    runpy.run_module('feishu_vc_async', run_name='__main__', alter_sys=True)\n"
    "finally:\n"
    "    status = open('/proc/self/status').read()\n"
    "    peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) / 1024\n"
    "    open(out, 'w').write(json.dumps(peak))\n"
)


def _failures(out: Path) -> dict[str, dict[str, object]]:
    path = out.with_name(out.name + ".failures.jsonl")
    return {str(f["meeting_no"]): f for f in read_jsonl(path)} if path.exists() else {}


async def test_hostile_meetings_fail_alone_and_retry_failed_gets_them_whole(
    tmp_path: Path,
) -> None:
    async with Emulator(meetings=14, seed=31, rate_limit=None) as emu:
        queries = [q for q in emu.meetings if len(emu.participants(q)) > 0][:10]
        deep, runaway, loop, endless = (q.meeting_no for q in queries[:4])
        meetings, out = tmp_path / "meetings.csv", tmp_path / "out.jsonl"
        write_meetings_csv(meetings, queries)
        async with HostileProxy(emu.base_url) as proxy:
            proxy.hostile.update(
                {deep: "deep", runaway: "new_token", loop: "loop", endless: "endless"}
            )
            argv = export_argv(proxy.base_url, meetings, out, *CAP, "--page-size", "20")
            code, stdout, _ = await run_cli(argv, app_env(emu))
            failed = _failures(out)
            rows = by_meeting(read_jsonl(out))
            truth = ground_truth(emu, queries)

            assert code == 1
            assert set(failed) == {deep, runaway, loop, endless}
            assert failed[deep]["error"] == "DecodeError"
            assert "nested too deep" in str(failed[deep]["message"])
            assert failed[runaway]["error"] == failed[loop]["error"] == "PagingError"
            assert "still had more after" in str(failed[runaway]["message"])
            assert "repeated a page token" in str(failed[loop]["message"])
            assert failed[endless]["error"] == "AnswerTooLargeError"
            assert "larger than the limit of 2000000 bytes" in str(failed[endless]["message"])
            assert failed[runaway]["permanent"]
            assert failed[loop]["permanent"]
            assert "Exported 6 of 10 meetings (4 failed)" in stdout
            # The others are whole; nothing of a failed meeting is kept, partial or not.
            assert rows == {k: v for k, v in truth.items() if k.split("@")[0] not in failed}

            # The server mends its ways: --retry-failed asks for all four again, whole.
            proxy.hostile.clear()
            code, stdout, _ = await run_cli([*argv, "--retry-failed"], app_env(emu))
        assert code == 0, stdout
        assert by_meeting(read_jsonl(out)) == truth
        assert len(read_jsonl(out)) == sum(len(v) for v in truth.values())  # none twice


async def test_an_endless_body_is_refused_at_the_cap_with_memory_bounded(tmp_path: Path) -> None:
    async with Emulator(meetings=3, seed=32, rate_limit=None) as emu:
        query = emu.meetings[0]
        meetings, out = tmp_path / "meetings.csv", tmp_path / "out.jsonl"
        write_meetings_csv(meetings, [query])
        peak = tmp_path / "peak.json"
        async with HostileProxy(emu.base_url) as proxy:
            proxy.hostile[query.meeting_no] = "endless"
            argv = export_argv(proxy.base_url, meetings, out, *CAP)
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _PEAK_RSS, str(peak), *argv,
                env={**app_env(emu), "PATH": "/usr/bin:/bin"},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            stdout, _ = await child.communicate()
            pushed = proxy.bytes_sent
    assert child.returncode == 1, stdout
    assert b"larger than the limit of 2000000 bytes" in stdout
    # Two attempts (--max-retries 1), each cut soon after the cap (what the proxy pushed
    # into the sockets' buffers before it saw the hang-up included): not an endless rest.
    assert pushed < 20 * 2_000_000
    peak_mb = json.loads(peak.read_text())
    print(f"peak RSS with an endless body: {peak_mb:.0f} MB")
    assert peak_mb < 200  # the process's own size; the body adds at most the cap


async def test_a_wrong_base_path_stops_at_once_naming_base_url(tmp_path: Path) -> None:
    async with Emulator(meetings=3, seed=33, rate_limit=None) as emu:
        meetings, out = tmp_path / "meetings.csv", tmp_path / "out.jsonl"
        write_meetings_csv(meetings, emu.meetings)
        async with HostileProxy(emu.base_url) as proxy:
            proxy.wrong_base = True
            argv = export_argv(proxy.base_url + "/feishu", meetings, out)
            env = {"FEISHU_ACCESS_TOKEN": "t-held"}  # no token endpoint in the way
            code, _, stderr = await run_cli(argv, env)
    assert code == 2
    assert "does not answer as the platform does (HTTP 404: body is not JSON" in stderr
    assert "is --base-url right?" in stderr
    assert "stopped before writing anything" in stderr
    assert not out.exists()


async def test_a_listing_that_fails_after_its_first_page_exports_what_it_found(
    tmp_path: Path,
) -> None:
    # Two pages of meeting_list (100 a page), no webinar: small meetings, a quick truth.
    data = MeetingData(webinars=0)
    async with Emulator(meetings=130, seed=34, rate_limit=None, data=data) as emu:
        out = tmp_path / "out.jsonl"
        since = min(q.meeting_start_time for q in emu.meetings)
        until = max(q.meeting_start_time for q in emu.meetings)
        async with HostileProxy(emu.base_url) as proxy:
            proxy.listing_fails_after = 1
            argv = [
                "export", "--since", str(since), "--until", str(until), "--out", str(out),
                "--base-url", proxy.base_url, "--max-retries", "0", "--progress", "none",
                "--rate-limit", "1000/1s", "--meeting-list-rate-limit", "1000/1s",
            ]  # fmt: skip
            code, stdout, stderr = await run_cli(argv, app_env(emu))
            found = read_jsonl(out)
            proxy.listing_fails_after = None
            code_again, stdout_again, _ = await run_cli([*argv, "--resume"], app_env(emu))
    assert code == 1, stderr
    assert "discovery stopped early" in stdout
    assert "--resume to continue the listing" in stdout
    assert "access token" not in stdout + stderr  # a listing failure is not a token one
    assert len({r["meeting_no"] for r in found}) > 0
    assert code_again == 0, stdout_again
    listed = emu.listed_meetings(since, until)
    truth = ground_truth(emu, [m.query() for m in listed])
    assert by_meeting(read_jsonl(out)) == truth
