"""Export of many participants to JSONL through the CLI (``feishu-vc export``): time,
rows per second and the exporter's peak RSS.

The emulator (its own process) holds webinars of 3,000 participants; the exporter runs
as ``python -m feishu_vc_async export`` in a fresh process with a limit far above what
it can reach (the CLI always paces), and reports its own ``ru_maxrss``. The row count of
the output is checked against the emulator's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._emulator_proc import ROOT, EmulatorProcess
from ._harness import BenchResult, Check, Config, NotLanded, Stat
from ._peers import require_client

NAME = "export"
TITLE = "4b. Export to JSONL through the CLI"
WEBINAR_SIZE = 3000
FULL_TARGET = 1_000_000
# Far above what one process reaches on loopback: the pacing never waits.
UNREACHABLE_RATE = "100000/1s"


def _have_cli() -> bool:
    try:
        from feishu_vc_async import cli  # noqa: F401
    except ImportError:
        return False
    return True


def run(cfg: Config) -> BenchResult:
    require_client()
    if not _have_cli():
        raise NotLanded("the export CLI (feishu_vc_async.cli) has not landed yet")
    res = BenchResult(NAME, TITLE)
    target = cfg.pick(FULL_TARGET, 12_000)
    runs = cfg.pick(1, 1)
    webinars = -(-target // WEBINAR_SIZE)
    participants = webinars * WEBINAR_SIZE
    res.params = {
        "participants": participants,
        "meetings": webinars,
        "participants_per_meeting": WEBINAR_SIZE,
        "rate_limit": UNREACHABLE_RATE,
        "runs": runs,
    }
    seconds: list[float] = []
    rss: list[float] = []
    cpu: list[float] = []
    sizes: list[int] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorProcess(
            meetings=webinars,
            webinars=webinars,
            webinar_size=WEBINAR_SIZE,
            seed=19,
            counts=False,
        ) as emu,
    ):
        meetings_file = Path(tmp) / "meetings.jsonl"
        with meetings_file.open("w") as f:
            for m in emu.meetings:
                q = m.query
                f.write(
                    json.dumps(
                        {
                            "meeting_no": q.meeting_no,
                            "meeting_start_time": q.meeting_start_time,
                            "meeting_end_time": q.meeting_end_time,
                        }
                    )
                    + "\n"
                )
        env = dict(os.environ, FEISHU_APP_ID=emu.app_id, FEISHU_APP_SECRET=emu.app_secret)
        for i in range(runs):
            out = Path(tmp) / f"out{i}.jsonl"
            rss_file = Path(tmp) / f"rss{i}.json"
            env["BENCH_RSS_OUT"] = str(rss_file)
            cmd = [
                sys.executable, "-m", "benchmarks._rss_wrap", "feishu_vc_async", "export",
                "--meetings", str(meetings_file), "--out", str(out),
                "--base-url", emu.base_url, "--rate-limit", UNREACHABLE_RATE,
                "--progress", "none", "-q",
            ]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"export exited {proc.returncode}: {proc.stderr[-1500:]}")
            with out.open("rb") as f:
                rows = sum(1 for _ in f)
            if rows != participants:
                raise RuntimeError(f"export wrote {rows} rows, the emulator holds {participants}")
            usage = json.loads(rss_file.read_text())
            seconds.append(elapsed)
            rss.append(usage["maxrss_mb"])
            cpu.append(usage["cpu_s"])
            sizes.append(out.stat().st_size)
            out.unlink()
    res.add("seconds", f"export {participants:,} participants: wall time", Stat.of(seconds, "s"))
    res.add(
        "rows_per_s",
        "export: participants written per second",
        Stat.of([participants / s for s in seconds], "rows/s"),
        better="higher",
    )
    res.add("peak_rss_mb", "export: exporter peak RSS", Stat.of(rss, "MB"))
    res.add(
        "cpu_per_100k",
        "export: exporter CPU per 100,000 participants",
        Stat.of([c / participants * 100_000 for c in cpu], "CPU s"),
    )
    res.params["output_mb"] = round(sizes[0] / 1e6, 1)
    res.checks.append(
        Check(
            "export",
            f"Export {participants:,} participants to JSONL (CLI)",
            f"{res.figure('seconds').stat.median:.1f} s, "
            f"{res.figure('rows_per_s').stat.median:,.0f} rows/s, "
            f"peak RSS {res.figure('peak_rss_mb').stat.median:.1f} MB",
            "informative" + ("" if participants >= 1_000_000 else " (not 1,000,000: see below)"),
            None,
            headline=True,
        )
    )
    if participants < 1_000_000:
        res.notes.append(
            f"Exported {participants:,} participants, not 1,000,000 "
            + ("(quick mode)." if cfg.quick else "(the largest that fits the time budget).")
        )
    res.notes.append(
        "Wall time includes the exporter's interpreter start and imports, and the "
        "emulator generating every row on first read (it runs in its own process, on "
        "the other core)."
    )
    return res
