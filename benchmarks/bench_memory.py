"""Peak RSS of fanning out 1,000 and 10,000 meetings (limits off, pages discarded), and
the time to the first item.

Each fan-out runs in a fresh process that reads its meetings lazily from a file and
reports its own ``ru_maxrss``; a baseline process fans out 10 meetings, so the figures
show what the interpreter and imports cost and what the meetings add. The goal is
memory flat in the number of meetings: the fan-out holds ``concurrency + buffer`` pages,
whatever the input's length.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._emulator_proc import ROOT, EmulatorProcess, MeetingFacts
from ._harness import BenchResult, Check, Config, Stat
from ._peers import require_client

NAME = "memory"
TITLE = "4. Memory of a fan-out over many meetings"
# "Flat": the larger fan-out's peak RSS within this share of the smaller one's.
FLAT_TOLERANCE = 0.10


def _write_meetings(path: Path, meetings: list[MeetingFacts]) -> None:
    with path.open("w") as f:
        for m in meetings:
            q = m.query
            row = {"meeting_no": q.meeting_no, "start": q.meeting_start_time}
            row["end"] = q.meeting_end_time
            f.write(json.dumps(row) + "\n")


def _fan_out(emu: EmulatorProcess, meetings_file: Path) -> dict[str, Any]:
    env = dict(os.environ, FEISHU_APP_ID=emu.app_id, FEISHU_APP_SECRET=emu.app_secret)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._fanout_child", str(meetings_file), emu.base_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"fan-out child failed: {proc.stderr[-1500:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["failures"]:
        raise RuntimeError(f"fan-out child: {out['failures']} meetings failed")
    return out


def run(cfg: Config) -> BenchResult:
    require_client()
    res = BenchResult(NAME, TITLE)
    small, large = cfg.pick((1_000, 10_000), (100, 500))
    sizes = {"baseline": 10, "small": small, "large": large}
    # The large run is mostly the emulator generating ~400,000 rows: one run of it keeps
    # the whole benchmark in budget (a peak RSS barely moves between runs).
    runs = {"baseline": cfg.pick(3, 1), "small": cfg.pick(3, 1), "large": 1}
    res.params = {"meetings": [small, large], "runs": runs, "baseline_meetings": 10}
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in sizes}
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorProcess(meetings=large, seed=17, counts=False) as emu,
    ):
        files = {}
        for key, n in sizes.items():
            files[key] = Path(tmp) / f"{key}.jsonl"
            _write_meetings(files[key], emu.meetings[:n])
        _fan_out(emu, files["baseline"])  # warm-up: the token path, the OS page cache
        for key in sizes:
            for _ in range(runs[key]):
                results[key].append(_fan_out(emu, files[key]))
    for key, n in sizes.items():
        rows = results[key]
        label = f"{n:,} meetings"
        res.add(
            f"{key}.peak_rss_mb",
            f"{label}: peak RSS",
            Stat.of([r["maxrss_mb"] for r in rows], "MB"),
        )
        res.add(
            f"{key}.rss_growth_mb",
            f"{label}: RSS growth during the fan-out (sampled every 20 ms, after imports)",
            Stat.of([max(0.0, r["rss_sampled_max_mb"] - r["rss_before_mb"]) for r in rows], "MB"),
        )
        res.add(
            f"{key}.first_item_ms",
            f"{label}: time to first item",
            Stat.of([r["first_item_s"] * 1e3 for r in rows], "ms"),
        )
        res.add(
            f"{key}.pages_per_s",
            f"{label}: pages/s (emulator generating rows on the fly)",
            Stat.of([r["pages"] / r["seconds"] for r in rows], "pages/s"),
            better="higher",
        )
        res.params[f"{key}_pages"] = rows[0]["pages"]
        res.params[f"{key}_participants"] = rows[0]["participants"]
    rss_small = res.figure("small.peak_rss_mb").stat.median
    rss_large = res.figure("large.peak_rss_mb").stat.median
    growth = rss_large / rss_small - 1
    grow_small = res.figure("small.rss_growth_mb").stat.median
    grow_large = res.figure("large.rss_growth_mb").stat.median
    res.checks.append(
        Check(
            "flat",
            f"Peak RSS, fan-out of {large:,} vs {small:,} meetings",
            f"{rss_large:.1f} MB vs {rss_small:.1f} MB ({growth:+.1%}); growth during the "
            f"fan-out {grow_large:.1f} vs {grow_small:.1f} MB",
            f"flat: within {FLAT_TOLERANCE:.0%}",
            growth <= FLAT_TOLERANCE,
            headline=True,
        )
    )
    res.checks.append(
        Check(
            "first_item",
            f"Time to first item (client creation and token fetch included), fan-out of "
            f"{large:,} meetings",
            f"{res.figure('large.first_item_ms').stat.median:.0f} ms "
            f"({small:,} meetings: {res.figure('small.first_item_ms').stat.median:.0f} ms)",
            "informative",
            None,
            headline=True,
        )
    )
    res.notes.append(
        "Each figure is a fresh process (peak RSS via resource.getrusage ru_maxrss); the "
        "meetings are read lazily from a file, pages discarded as they arrive; "
        "client Limits.unlimited(), emulator gateway off, default fan-out concurrency."
    )
    return res
