"""`feishu-vc export` and the files it writes: one writer per output, owner-only modes.

The exports here run as subprocesses under ``umask 000``, the most permissive a user can
have, against an emulator served from the test's loop.
"""

from __future__ import annotations

import signal
import socket
import stat
import sys
from pathlib import Path

import anyio
import pytest

from feishu_vc_async.emulator import Emulator, Faults, RequestRecord
from feishu_vc_async.export._input_writer import write_meetings_csv
from tests._cli import app_env, by_meeting, export_argv, ground_truth, read_jsonl, run_cli

pytestmark = pytest.mark.anyio


def _permissive(argv: list[str]) -> list[str]:
    """``feishu-vc ARGV`` in a subprocess whose umask leaves every file world-writable."""
    shell = ["sh", "-c", 'umask 000 && exec "$@"', "sh"]
    return [*shell, sys.executable, "-m", "feishu_vc_async", *argv]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_second_export_to_the_same_output_exits_2_and_the_first_finishes_exact(
    tmp_path: Path,
) -> None:
    async with Emulator(meetings=12, seed=13, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        out = tmp_path / "out.jsonl"
        lock = tmp_path / "out.jsonl.lock"
        argv = export_argv(emu, meetings, out, "--concurrency", "1", "--progress", "none")
        env = {**app_env(emu), "PATH": "/usr/bin:/bin"}
        async with await anyio.open_process(_permissive(argv), env=env) as first:
            # Frozen as its token request is answered (it holds the lock by then, and has
            # not seen the answer): it cannot finish while the other two runs try.
            asked = anyio.Event()

            def freeze(record: RequestRecord) -> None:
                if record.token_request and not asked.is_set():
                    first.send_signal(signal.SIGSTOP)
                    asked.set()

            emu.on_record(freeze)
            with anyio.fail_after(60):
                await asked.wait()
            emu.on_record(None)
            try:
                assert _mode(lock) == 0o600
                seconds = [
                    await run_cli([*argv, flag], app_env(emu))
                    for flag in ("--resume", "--overwrite")
                ]
            finally:
                first.send_signal(signal.SIGCONT)
            with anyio.fail_after(120):
                first_code = await first.wait()
            holder = f"pid {first.pid} on {socket.gethostname()}"
        token_requests = [r for r in emu.requests if r.token_request]
        truth = ground_truth(emu, emu.meetings)
    for code, stdout, stderr in seconds:
        assert code == 2
        assert f"{out} is being written by another export ({holder}, started " in stderr
        assert stdout == ""
    assert first_code == 0
    assert len(token_requests) == 1  # the refused runs asked nothing
    assert not lock.exists()
    assert by_meeting(read_jsonl(out)) == {k: v for k, v in truth.items() if v}


async def test_every_file_the_export_writes_is_owner_only(tmp_path: Path) -> None:
    async with Emulator(meetings=20, seed=6, rate_limit=None) as emu:
        emu.deny_meeting(emu.meetings[2])  # a failures file
        meetings = tmp_path / "in" / "meetings.csv"
        meetings.parent.mkdir()
        write_meetings_csv(meetings, emu.meetings)
        written = tmp_path / "out"
        written.mkdir()
        (written / "out.csv").write_text("an older export\n")
        (written / "out.csv").chmod(0o644)
        env = {**app_env(emu), "PATH": "/usr/bin:/bin"}
        codes = {}
        for fmt, extra in (
            ("jsonl", []),
            ("csv", ["--overwrite"]),
            ("parquet", ["--max-retries", "0", "--concurrency", "1"]),
        ):
            if fmt == "parquet":  # a transient failure: the run stays unfinished, journal kept
                emu.faults = Faults(seed=1, error_rate=0.3)
            argv = export_argv(emu, meetings, written / f"out.{fmt}", "--progress", "none", *extra)
            result = await anyio.run_process(_permissive(argv), env=env, check=False)
            codes[fmt] = result.returncode
    assert codes == {"jsonl": 1, "csv": 1, "parquet": 1}
    modes = {p.name: _mode(p) for p in written.iterdir()}
    assert set(modes) >= {
        *(f"out.{fmt}" for fmt in ("jsonl", "csv", "parquet")),
        *(f"out.{fmt}.checkpoint.json" for fmt in ("jsonl", "csv", "parquet")),
        *(f"out.{fmt}.failures.jsonl" for fmt in ("jsonl", "csv", "parquet")),
        "out.parquet.journal.jsonl",
    }
    assert modes == dict.fromkeys(modes, 0o600)
