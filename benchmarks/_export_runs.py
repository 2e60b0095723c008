"""Exports in a process of their own against the emulator in another, as ``bench_export``
and ``bench_database`` run them: the emulator's webinars, the meetings file, and one
exporter process measured (wall time, its own CPU and peak RSS through
``benchmarks._rss_wrap``, the emulator's CPU over the same export)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ._emulator_proc import ROOT, EmulatorProcess, MeetingFacts

WEBINAR_SIZE = 2500
# Far above what one process reaches on loopback: the pacing never waits.
UNREACHABLE_RATE = "100000/1s"


@dataclass(frozen=True)
class ExporterRun:
    seconds: float  # wall time, interpreter start to exit
    exporter_cpu_s: float  # the exporter process's user + system CPU
    peak_rss_mb: float  # the exporter process's high-water mark
    emulator_cpu_s: float  # the emulator process's CPU over the same export


def webinar_emulator(webinars: int) -> EmulatorProcess:
    """An emulator of its own holding ``webinars`` + 1 webinars of :data:`WEBINAR_SIZE`
    participants (the extra one for a one-meeting export), none generated before an
    export asks for it."""
    return EmulatorProcess(
        meetings=webinars + 1,
        webinars=webinars + 1,
        webinar_size=WEBINAR_SIZE,
        seed=19,
        counts=False,
    )


def write_meetings(path: Path, meetings: list[MeetingFacts]) -> None:
    """A meetings file (JSONL) of ``meetings``, as the CLI and ``load_meetings`` read it."""
    with path.open("w") as f:
        for m in meetings:
            q = m.query
            row = {
                "meeting_no": q.meeting_no,
                "meeting_start_time": q.meeting_start_time,
                "meeting_end_time": q.meeting_end_time,
            }
            f.write(json.dumps(row) + "\n")


def run_exporter(emu: EmulatorProcess, args: list[str], usage_file: Path, what: str) -> ExporterRun:
    """Run ``python -m benchmarks._rss_wrap ARGS`` (a module and its arguments) with the
    emulator's app credentials in the environment, and measure it."""
    env = dict(
        os.environ,
        FEISHU_APP_ID=emu.app_id,
        FEISHU_APP_SECRET=emu.app_secret,
        BENCH_RSS_OUT=str(usage_file),
    )
    cmd = [sys.executable, "-m", "benchmarks._rss_wrap", *args]
    emulator_cpu = emu.stats()["cpu_s"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    emulator_cpu = emu.stats()["cpu_s"] - emulator_cpu
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}: {proc.stderr[-1500:]}")
    usage = json.loads(usage_file.read_text())
    return ExporterRun(elapsed, usage["cpu_s"], usage["maxrss_mb"], emulator_cpu)
