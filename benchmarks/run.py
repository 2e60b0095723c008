"""Run the benchmarks and write benchmarks/results.json and benchmarks/RESULTS.md.

    python -m benchmarks.run                 # everything (what `make bench` runs)
    python -m benchmarks.run --quick         # smoke sizes, one repeat
    python -m benchmarks.run --only decode   # one benchmark (repeatable option)
    python -m benchmarks.run --only range --merge   # one benchmark into the full results

Each benchmark runs in its own child process with a time limit: one benchmark's
imports, garbage or hang cannot bend another's numbers, and a stuck one is reported
as failed instead of stopping the run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from ._harness import (
    BenchResult,
    Config,
    MergeError,
    NotLanded,
    machine_info,
    read_for_merge,
    write_results,
)

# Run order: cheap and independent first, the slow scaled-time one near the end.
BENCHMARKS: dict[str, str] = {
    "decode": "benchmarks.bench_decode",
    "emulator": "benchmarks.bench_emulator",
    "throughput": "benchmarks.bench_throughput",
    "coldstart": "benchmarks.bench_coldstart",
    "quota": "benchmarks.bench_quota",
    "memory": "benchmarks.bench_memory",
    "export": "benchmarks.bench_export",
    "database": "benchmarks.bench_database",
    "range": "benchmarks.bench_range",
    "events": "benchmarks.bench_events",
    "workers": "benchmarks.bench_workers",
}
# Seconds a benchmark may take before it is stopped and reported as failed.
# range: two settings x three ways, each paced over about 30-45 s (about 4 minutes).
# database: 1M rows loaded three ways in 4 rounds, and 3 x 3 whole exports (~7 minutes).
TIMEOUTS = {
    "database": 900.0,
    "quota": 300.0,
    "memory": 200.0,
    "export": 200.0,
    "throughput": 200.0,
    "range": 480.0,
    # events: two loads (1,000 meetings each) into SQLite and PostgreSQL, ~1 min each.
    "events": 900.0,
    # workers: 2 rounds of the job three ways (~20 s each), then two profiled runs.
    "workers": 420.0,
}
DEFAULT_TIMEOUT = 120.0
HERE = Path(__file__).resolve().parent


def run_one(name: str, quick: bool) -> BenchResult:
    """Run one benchmark in this process (the child's side)."""
    module_name = BENCHMARKS[name]
    cfg = Config.for_mode(quick)
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        res = BenchResult(name, name, status="not_landed")
        res.notes.append(f"benchmark module missing: {exc}")
        return res
    try:
        res = module.run(cfg)
    except NotLanded as exc:
        res = BenchResult(name, module.TITLE, status="not_landed")
        res.notes.append(str(exc))
    except Exception:
        res = BenchResult(name, module.TITLE, status="failed")
        res.notes.append("failed: " + traceback.format_exc(limit=-4).strip().replace("\n", " | "))
    res.elapsed_s = time.perf_counter() - t0
    res.description = inspect.cleandoc(module.__doc__ or "")
    return res


def run_child(name: str, quick: bool, timeout: float) -> BenchResult:
    """Run one benchmark in a fresh interpreter and read back its result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks.run", "--child", name, "--child-out", str(out)]
        if quick:
            cmd.append("--quick")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, cwd=HERE.parent, timeout=timeout, capture_output=True, text=True
            )
        except subprocess.TimeoutExpired:
            res = BenchResult(name, name, status="failed")
            res.notes.append(f"stopped after the {timeout:.0f} s time limit")
            res.elapsed_s = time.perf_counter() - t0
            return res
        if proc.returncode != 0 or not out.exists():
            res = BenchResult(name, name, status="failed")
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
            res.notes.append(f"child exited {proc.returncode}: " + " | ".join(tail))
            res.elapsed_s = time.perf_counter() - t0
            return res
        return BenchResult.from_json(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke sizes, one repeat")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for results.json and RESULTS.md (default: benchmarks/; "
        "with --only or --quick: benchmarks/.scratch/ so the full results stay intact)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add this run's benchmarks to the results already in the output directory "
        "(default with --merge: benchmarks/, or benchmarks/.scratch/ with --quick), "
        "replacing the sections of the same names and keeping the others as their runs "
        "wrote them; a quick run never merges into a full run's results",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        res = run_one(args.child, args.quick)
        args.child_out.write_text(json.dumps(res.to_json()))
        return 0

    names = args.only or list(BENCHMARKS)
    partial = (bool(args.only) and not args.merge) or args.quick
    out_dir = args.out or (HERE / ".scratch" if partial else HERE)
    if args.merge:
        try:  # refused now rather than after minutes of benchmarks
            read_for_merge(out_dir / "results.json", quick=args.quick)
        except MergeError as exc:
            parser.error(f"--merge: {exc}")
    started = datetime.now(UTC)
    machine = machine_info()
    t0 = time.perf_counter()
    results: list[BenchResult] = []
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        res = run_child(name, args.quick, TIMEOUTS.get(name, DEFAULT_TIMEOUT))
        results.append(res)
        print(f"[bench] {name}: {res.status} in {res.elapsed_s:.1f} s", flush=True)
        for ratio in res.ratios:
            print(f"    {ratio.label}: {ratio.value:.2f}x", flush=True)
        for check in res.checks:
            print(f"    {check.label}: {check.measured} (met: {check.met})", flush=True)
        if res.status != "ok":
            for note in res.notes:
                print(f"    {note}", flush=True)
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "")
    if args.only:
        command += "".join(f" --only {n}" for n in args.only)
    if args.merge:
        command += " --merge"
    json_path, md_path = write_results(
        results,
        out_dir,
        quick=args.quick,
        started=started,
        total_elapsed=time.perf_counter() - t0,
        command=command,
        machine_info_start=machine,
        merge=args.merge,
        order=list(BENCHMARKS),
    )
    print(
        f"[bench] wrote {os.path.relpath(json_path)} and {os.path.relpath(md_path)} "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
