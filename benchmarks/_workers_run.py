"""The processes of ``bench_workers`` and how their CPU is read.

Two children, run as ``python -m benchmarks._workers_run MODE ...``:

* ``reference --base-url URL --since A --until B --db URL --schema S --warm-schema W
  --tenants-file F --warm-tenant T --rate N/PERIOD``: the single-process way, for the
  reference CPU per page: ``feishu-vc export --since A --until B --out URL --db-schema S
  --app-type store --tenant-key KEY`` for each tenant of ``F`` in turn, in this process
  (the CLI's ``main``, as ``feishu-vc`` runs it), after one unmeasured export of the
  warm-up tenant ``T`` into ``W`` (imports, connections, code paths: a worker is warm
  too when it is measured). It then prints ``warm`` and waits for a line on stdin (the
  parent reads the servers' CPU meanwhile), runs the measured exports and prints one
  JSON line: ``cpu_s`` (this process's CPU, every thread, over the measured exports),
  ``wall_s``, ``started`` (``time.monotonic()`` at their start: the emulator's request
  log is on the same clock).
* ``worker ARGS``: ``feishu-vc worker ARGS`` (``python -m feishu_vc_async worker`` is
  the same); when ``BENCH_WORKER_PROFILE`` names a file, ``cProfile`` (on a CPU clock)
  runs from SIGUSR1 to SIGUSR2, and the profile is dumped there at SIGUSR2
  (:func:`profile_job`). Only the benchmark's profiling run sets it.

The app's credentials come from ``FEISHU_APP_ID``, ``FEISHU_APP_SECRET`` and
``FEISHU_APP_TICKET`` in the environment, as for ``feishu-vc``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._emulator_proc import ROOT

PROFILE_ENV = "BENCH_WORKER_PROFILE"
# A profiled worker profiles from the first signal to the second, then dumps the profile.
PROFILE_START, PROFILE_STOP = signal.SIGUSR1, signal.SIGUSR2
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, every thread (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / TICKS


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "feishu_vc_async", *args]


# --- workers ------------------------------------------------------------------------


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    profile: Path | None = None  # where it dumps its profile (``profile_job``)

    @property
    def cpu(self) -> float:
        return process_cpu(self.proc.pid)


def start_workers(
    n: int, args: Sequence[str], env: Mapping[str, str], logs: Path, *, profile: Path | None = None
) -> list[Worker]:
    """``n`` worker processes, each listening once this returns; with ``profile``, each
    ready to profile (:func:`profile_job`) into ``profile`` + ``-`` + its number."""
    workers: list[Worker] = []
    for i in range(n):
        log = logs / f"worker-{i}.log"
        child_env = dict(env)
        mine = None if profile is None else profile.with_name(f"{profile.name}-{i}")
        if mine is not None:
            child_env[PROFILE_ENV] = str(mine)
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks._workers_run", "worker", *args],
                cwd=ROOT,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        workers.append(Worker(proc, log, mine))
    deadline = time.monotonic() + 60
    for w in workers:
        while b"worker: listening" not in w.log.read_bytes():
            if w.proc.poll() is not None or time.monotonic() > deadline:
                stop_workers(workers)
                raise RuntimeError(f"a worker did not start: {w.log.read_text()[-1500:]}")
            time.sleep(0.05)
    return workers


def stop_workers(workers: Sequence[Worker]) -> None:
    """SIGTERM each (they finish the tasks in hand), then wait; kill one that hangs."""
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


def _worker_main(argv: list[str]) -> int:
    from feishu_vc_async.cli import main

    profile = os.environ.get(PROFILE_ENV, "")
    if profile:
        import cProfile

        # CPU time, not wall time: a wait in epoll costs nothing unless the process runs.
        profiler = cProfile.Profile(time.process_time)

        def start(signum: int, frame: object) -> None:
            profiler.enable()

        def stop(signum: int, frame: object) -> None:
            profiler.disable()
            profiler.dump_stats(profile + ".part")
            os.replace(profile + ".part", profile)  # whole, or not there yet

        signal.signal(PROFILE_START, start)
        signal.signal(PROFILE_STOP, stop)
    return main(["worker", *argv])


def profile_job(workers: Sequence[Worker], start: bool) -> None:
    """Start (or stop and dump) the profile of each worker started with ``profile``:
    only the job is profiled, not the worker's start-up, its warm-up or its stop."""
    for w in workers:
        w.proc.send_signal(PROFILE_START if start else PROFILE_STOP)
    if start:
        return
    deadline = time.monotonic() + 30
    for w in workers:
        assert w.profile is not None
        while not w.profile.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no profile written to {w.profile}")
            time.sleep(0.05)


# --- the reference: one process, the CLI's export, tenant after tenant -----------------


def _reference_main(argv: list[str]) -> int:
    from feishu_vc_async.cli import main

    parser = argparse.ArgumentParser(prog="python -m benchmarks._workers_run reference")
    for name in ("--base-url", "--since", "--until", "--db", "--schema", "--warm-schema",
                 "--tenants-file", "--warm-tenant", "--rate"):  # fmt: skip
        parser.add_argument(name, required=True)
    args = parser.parse_args(argv)
    tenants = [t for t in Path(args.tenants_file).read_text().split() if t]

    def export(tenant: str, schema: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        argv = ["export", "--since", args.since, "--until", args.until,
                "--out", args.db, "--db-schema", schema,
                "--app-type", "store", "--tenant-key", tenant, "--base-url", args.base_url,
                "--rate-limit", args.rate, "--meeting-list-rate-limit", args.rate,
                "--quiet"]  # fmt: skip
        code = main(argv, stdout=out, stderr=err)
        if code != 0:
            raise SystemExit(f"export of tenant {tenant} exited {code}: {err.getvalue()[-1500:]}")

    profile = os.environ.get(PROFILE_ENV, "")
    export(args.warm_tenant, args.warm_schema)
    print("warm", flush=True)
    sys.stdin.readline()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    started = time.monotonic()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for tenant in tenants:
        export(tenant, args.schema)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "started": started}), flush=True)
    return 0


# --- reading a profile --------------------------------------------------------------

# Where a function's own CPU time goes, by the file it is in (first match wins).
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PostgreSQL client (asyncpg, our database output)",
     ("asyncpg", "/export/_postgres", "/export/_db")),
    ("Redis client (shared limiter and tokens, task stream)",
     ("/redis/", "ratelimit/_redis", "auth/_redis", "auth/_shared_tokens", "/workers/_broker")),
    ("taskiq (receiving, running, acknowledging tasks)", ("taskiq", "/workers/")),
    ("HTTP client (aiohttp, yarl, multidict)", ("aiohttp", "yarl", "multidict")),
    ("feishu_vc_async: fan-out, export, decoding, limiter", ("feishu_vc_async", "msgspec")),
    ("asyncio event loop (waiting, scheduling, tasks)", ("/asyncio/", "selectors.py")),
)  # fmt: skip
OTHER_AREA = "other"
# Socket calls, C calls and asyncio's transports carry out what a library asks: their
# time is charged to the nearest caller outside them (a socket send to asyncpg's COPY),
# in proportion to what each caller spent in them. The event loop's own wait (epoll,
# called by the loop, not by a library) stays with the event loop.
_CARRIERS = ("/asyncio/selector_events.py", "/asyncio/transports.py", "/asyncio/streams.py",
             "/asyncio/sslproto.py")  # fmt: skip

Func = tuple[str, int, str]


def _carrier(func: Func) -> bool:
    return func[0] == "~" or func[0].endswith(_CARRIERS)


def _area(func: Func) -> str:
    return next((label for label, marks in AREAS if any(m in func[0] for m in marks)), OTHER_AREA)


def profile_areas(paths: Sequence[Path]) -> tuple[dict[str, float], dict[str, float]]:
    """Over the profiles ``paths`` added up: CPU seconds by area (:data:`AREAS`, the
    socket and C calls charged to the library that made them), and the own time of
    each built-in call (socket send and recv, epoll...) by name."""
    stats = pstats.Stats(str(paths[0]), stream=io.StringIO())
    for p in paths[1:]:
        stats.add(str(p))
    raw: dict[Func, tuple[int, int, float, float, dict[Func, tuple[int, int, float, float]]]]
    raw = stats.stats  # type: ignore[attr-defined]
    charged: dict[Func, dict[str, float]] = {}

    def shares(func: Func, seen: frozenset[Func]) -> dict[str, float]:
        """Where the time spent in ``func`` is charged: area -> fraction."""
        if not _carrier(func) or func in seen:
            return {_area(func) if not _carrier(func) else OTHER_AREA: 1.0}
        if func in charged:
            return charged[func]
        callers = raw[func][4] if func in raw else {}
        total = sum(c[2] for c in callers.values())
        if total <= 0:
            return {OTHER_AREA if _carrier(func) else _area(func): 1.0}
        out: dict[str, float] = {}
        for caller, c in callers.items():
            for area, part in shares(caller, seen | {func}).items():
                out[area] = out.get(area, 0.0) + part * c[2] / total
        charged[func] = out
        return out

    areas: dict[str, float] = {}
    builtins: dict[str, float] = {}
    for func, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        for area, part in shares(func, frozenset()).items():
            areas[area] = areas.get(area, 0.0) + part * tottime
        if func[0] == "~":
            builtins[func[2]] = builtins.get(func[2], 0.0) + tottime
    return areas, builtins


def socket_writes(paths: Sequence[Path]) -> dict[str, int]:
    """How many times each library wrote to a socket (asyncio transports' ``write`` and
    ``writelines``, by the area of their caller)."""
    stats = pstats.Stats(str(paths[0]), stream=io.StringIO())
    for p in paths[1:]:
        stats.add(str(p))
    raw = stats.stats  # type: ignore[attr-defined]
    out: dict[str, int] = {}
    for func, (_cc, _nc, _tt, _ct, callers) in raw.items():
        if func[0].endswith(_CARRIERS) and func[2] in ("write", "writelines"):
            for caller, c in callers.items():
                if caller[0].endswith(_CARRIERS):
                    continue  # writelines -> write: counted once, at the library's call
                area = _area(caller)
                out[area] = out.get(area, 0) + int(c[1])
    return out


def main() -> int:
    mode, argv = sys.argv[1], sys.argv[2:]
    if mode == "worker":
        return _worker_main(argv)
    if mode == "reference":
        return _reference_main(argv)
    raise SystemExit(f"unknown mode {mode!r}: worker or reference")


if __name__ == "__main__":
    raise SystemExit(main())
