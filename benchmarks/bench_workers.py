"""The workers: one multi-tenant job done by 1 worker process and by 2 on this machine,
against the same job done in a single process: what the worker machinery costs per
page, what a second worker adds here, and a projection to N machines.

**The job.** A store app installed by 8 tenants (quick: 2) of 400 meetings each (quick:
60), the emulator's sizes (most under 30 people, a few hundreds; about 1.25 pages of 100
a meeting), in the emulator's own process with no gateway: nothing paces the clients
but their own limits, set far above what they reach (participant_list and meeting_list
100000/1s), so pages/s measures capacity, not a budget. Each tenant's window is the 31
days before 2026-01-01, every ended meeting meeting_list lists in it (no webinars, no
external meetings), exported into PostgreSQL, each run into a schema of its own (dropped
after).

**1 and 2 workers.** ``feishu-vc worker --broker redis://127.0.0.1:6379/14 --queue Q
--app-type store --redis-url redis://127.0.0.1:6379/15 --redis-prefix P --rate-limit
100000/1s --meeting-list-rate-limit 100000/1s``, no ``--tenant-key`` (a worker acts for
the tenant each task names; the app's credentials and app_ticket in its environment),
``--concurrency`` 4 (the default), each listening before the clock starts and warmed by
an unmeasured job (one more tenant, into another schema: imports, connections, the
shared tokens, as a long-lived worker is). The job is queued and waited for by the
scheduler, a process of its own: ``feishu-vc export --since A --until B --out
postgresql://... --db-schema S --broker redis://... --queue Q --app-type store --tenants
all --tenants-file FILE --quiet``. *Wall* is from the job's first task in the stream
(its id's milliseconds, Redis's clock) to the scheduler's exit, which looks at the
tables every 0.25 s; the scheduler's own start-up is before it (its start to exit is
a figure apart). Worker CPU is each worker process's user + system time
(``/proc/PID/stat``, every thread) from just before the job is queued to its end.

**The single process**, the reference: ``feishu-vc export --since A --until B --out
postgresql://... --db-schema S --app-type store --tenant-key KEY`` (same limits) for
each tenant in turn, in one process (``benchmarks/_workers_run.py`` calls the CLI's
``main``, after one unmeasured export of the warm-up tenant); its CPU is that process's
over the measured exports, and its wall time theirs. It fetches through the same
fan-out and writes through the same database output as a worker's task does.

For every run: *span* is from the first participant_list request to the last, by
arrival at the emulator; pages are the emulator's count of participant_list answers,
checked against the minimum (one per 100 participants, at least one a meeting: no page
asked twice); the tables are checked against the emulator's ground truth (every listed
meeting held, every participant row there); the emulator's, PostgreSQL's (its processes
and reaped backends: best effort, anything else using the server counts) and Redis's
CPU over the run say where the two cores went, and the machine's busy time over it
(``/proc/stat``, every process) how much went to anything else. Each round runs the
single process, 1 worker, then 2 workers (the emulator encodes each page once, in the
first run, so the later ones find it done); figures are medians over the rounds.

If a worker's CPU per page is more than 10 % over the single process's, the job is run
once more by 1 worker and once more by the single process under ``cProfile`` on a CPU
clock (``BENCH_WORKER_PROFILE``, set only here; the worker profiles the job alone, from
SIGUSR1 to SIGUSR2), and their CPU per page is split by area (socket and C calls charged
to the library that made them), with the socket writes each library made per page.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._db_loaders import POSTGRES_URL, REAPED, postgres_cpu
from ._emulator_proc import ROOT, EmulatorProcess, StoreAppFacts
from ._harness import BenchResult, Check, Config, Stat
from ._workers_run import (
    TICKS,
    Worker,
    cli,
    profile_areas,
    profile_job,
    socket_writes,
    start_workers,
    stop_workers,
)

NAME = "workers"
TITLE = "8. Workers: one multi-tenant job on 1 and 2 worker processes"
ANCHOR = 1_767_225_600  # 2026-01-01T00:00:00Z, the `feishu-vc emulator` default
DAY = 86_400
SINCE, UNTIL = ANCHOR - 31 * DAY, ANCHOR
RATE = "100000/1s"  # far above what any client here reaches: capacity, not a budget
REDIS_HOST = os.environ.get("FEISHU_BENCH_REDIS", "redis://127.0.0.1:6379")
BROKER_URL = f"{REDIS_HOST}/14"  # the task stream
LIMITER_URL = f"{REDIS_HOST}/15"  # the shared limiter and tenant tokens
PLATFORM_PER_TENANT = 100 / 60  # participant_list: 100 a minute per (app, tenant)
CPU_GOAL = 1.10  # a worker's CPU per page within 10 % of the single process's
CORES = os.cpu_count() or 1
SUBPROCESS_TIMEOUT = 300.0


@dataclass
class RunFacts:
    """One run of the job (the reference, or n workers)."""

    wall_s: float
    span_s: float
    pages: int
    meeting_list: int
    rate_limited: int
    errors: int
    client_cpu_s: list[float]  # per process: the reference's one, or each worker's
    emulator_cpu_s: float
    postgres_cpu_s: float
    redis_cpu_s: float
    scheduler_cpu_s: float = 0.0  # export --broker's process (workers only)
    scheduler_wall_s: float = 0.0  # its start to its exit (workers only)
    # The window the CPU figures are read over (about the wall time; for workers the
    # scheduler's start to its exit), and every core's busy time over it (/proc/stat).
    window_s: float = math.nan
    machine_cpu_s: float = math.nan
    held: int = 0  # meetings in the tables
    rows: int = 0  # participant rows in the tables
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_per_page_ms(self) -> float:
        return 1000 * sum(self.client_cpu_s) / self.pages if self.pages else math.nan

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall_s

    @property
    def busy_cores(self) -> float:
        """CPU seconds of the run's processes (clients, scheduler, emulator, PostgreSQL,
        Redis) over the window they are read in."""
        parts = (sum(self.client_cpu_s), self.scheduler_cpu_s, self.emulator_cpu_s,
                 self.postgres_cpu_s, self.redis_cpu_s)  # fmt: skip
        return sum(p for p in parts if not math.isnan(p)) / self.window_s

    @property
    def machine_cores(self) -> float:
        """Every process's CPU on the machine over the same window, this run's or not."""
        return self.machine_cpu_s / self.window_s


@dataclass(frozen=True)
class Job:
    emu: EmulatorProcess
    app: StoreAppFacts
    warm_tenant: str
    tenants: list[str]
    tenants_file: Path
    env: dict[str, str]
    prefix: str
    tmp: Path

    @property
    def pages(self) -> int:
        return sum(self.app.tenants[t].pages for t in self.tenants)

    @property
    def meetings(self) -> int:
        return sum(self.app.tenants[t].meetings for t in self.tenants)

    @property
    def rows(self) -> int:
        return sum(self.app.tenants[t].rows for t in self.tenants)


# --- the servers' CPU and the tables --------------------------------------------------


def redis_cpu() -> float:
    """CPU seconds of the local redis-server so far (NaN if it cannot be read)."""
    try:
        import psutil

        total = 0.0
        for proc in psutil.process_iter(["name", "cpu_times"]):
            times = proc.info["cpu_times"]
            if proc.info["name"] == "redis-server" and times is not None:
                total += times.user + times.system
        return total if total > 0 else math.nan
    except Exception:  # not local, not readable: the figure is left out
        return math.nan


def _sql(query: Callable[[Any], Any]) -> Any:
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=10)
        try:
            return await query(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _tables(schema: str) -> tuple[int, int]:
    """(meetings held, participant rows) in ``schema``'s tables."""

    async def count(conn: Any) -> tuple[int, int]:
        held = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".feishu_vc_meetings WHERE participant_rows IS NOT NULL'
        )
        rows = await conn.fetchval(f'SELECT count(*) FROM "{schema}".feishu_vc_participants')
        return int(held), int(rows)

    result: tuple[int, int] = _sql(count)
    return result


def _drop(*schemas: str) -> None:
    async def drop(conn: Any) -> None:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    _sql(drop)


def _clean_redis(prefix: str) -> None:
    """Delete this run's keys (its prefix) from both Redis databases; never a flush."""
    import redis

    for url in (BROKER_URL, LIMITER_URL):
        conn = redis.Redis.from_url(url)
        try:
            keys = list(conn.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                conn.delete(*keys)
        finally:
            conn.close()


def _services() -> str | None:
    """Why the benchmark cannot run here (no PostgreSQL, no Redis, no taskiq), or None."""
    try:
        import taskiq  # noqa: F401
        import taskiq_redis  # noqa: F401
    except ImportError:
        return "the workers extra is not installed (pip install 'feishu-vc-async[workers]')"
    try:
        _sql(lambda conn: conn.fetchval("SELECT 1"))
    except Exception as exc:
        return f"no PostgreSQL at {POSTGRES_URL}: {exc}"
    try:
        import redis

        conn = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=2)
        try:
            conn.ping()
        finally:
            conn.close()
    except Exception as exc:
        return f"no Redis at {BROKER_URL}: {exc}"
    return None


# --- the runs ---------------------------------------------------------------------------


def _schema(what: str) -> str:
    return f"bench_workers_{what}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _run(cmd: list[str], env: Mapping[str, str], what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout)[-1500:]
        raise RuntimeError(f"{what} exited {proc.returncode}: {said}")
    return proc


def _servers() -> tuple[float, float]:
    return postgres_cpu(), redis_cpu()


def machine_cpu() -> float:
    """Busy CPU seconds of every core so far (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def run_reference(job: Job, *, profile: Path | None = None) -> RunFacts:
    schema, warm = _schema("ref"), _schema("refwarm")
    env = dict(job.env)
    if profile is not None:
        env["BENCH_WORKER_PROFILE"] = str(profile)
    cmd = [sys.executable, "-m", "benchmarks._workers_run", "reference",
           "--base-url", job.emu.base_url, "--since", str(SINCE), "--until", str(UNTIL),
           "--db", POSTGRES_URL, "--schema", schema, "--warm-schema", warm,
           "--tenants-file", str(job.tenants_file), "--warm-tenant", job.warm_tenant,
           "--rate", RATE]  # fmt: skip
    try:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # the warm-up export is done
        if ready.strip() != "warm":
            proc.kill()
            _, err = proc.communicate()
            raise RuntimeError(f"the reference export failed: {err[-1500:]}")
        emu0 = job.emu.stats()["cpu_s"]
        pg0, redis0 = _servers()
        machine0, t0 = machine_cpu(), time.perf_counter()
        out, err = proc.communicate("go\n", timeout=SUBPROCESS_TIMEOUT)
        machine1, window = machine_cpu(), time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"the reference export exited {proc.returncode}: {err[-1500:]}")
        time.sleep(REAPED)
        pg1, redis1 = _servers()
        report = _last_json(out)
        counts = job.emu.count(job.app.app_id, report["started"])
        held, rows = _tables(schema)
    finally:
        _drop(schema, warm)
    return RunFacts(
        wall_s=float(report["wall_s"]),
        span_s=_span(counts),
        pages=int(counts["participant_list"]),
        meeting_list=int(counts["meeting_list"]),
        rate_limited=int(counts["rate_limited"]),
        errors=int(counts["errors"]),
        client_cpu_s=[float(report["cpu_s"])],
        emulator_cpu_s=float(counts["cpu_s"]) - emu0,
        postgres_cpu_s=pg1 - pg0,
        redis_cpu_s=redis1 - redis0,
        window_s=window,
        machine_cpu_s=machine1 - machine0,
        held=held,
        rows=rows,
    )


def _last_json(text: str) -> dict[str, Any]:
    import json

    answer: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return answer


def _span(counts: Mapping[str, Any]) -> float:
    first, last = counts.get("first"), counts.get("last")
    return float(last) - float(first) if first is not None and last is not None else math.nan


def _enqueue(job: Job, schema: str, queue: str, tenants: list[str]) -> list[str]:
    who = (["--tenants", ",".join(tenants)] if tenants != job.tenants
           else ["--tenants", "all", "--tenants-file", str(job.tenants_file)])  # fmt: skip
    return cli("export", "--since", str(SINCE), "--until", str(UNTIL),
               "--out", POSTGRES_URL, "--db-schema", schema,
               "--broker", BROKER_URL, "--queue", queue,
               "--app-type", "store", *who, "--quiet")  # fmt: skip


def _stream_end(queue: str) -> str:
    """The id of the last entry added to the task stream so far."""
    import redis

    conn = redis.Redis.from_url(BROKER_URL)
    try:
        info: Any = conn.xinfo_stream(queue)
        last = info["last-generated-id"]
        return last.decode() if isinstance(last, bytes) else str(last)
    finally:
        conn.close()


def _queued_at(queue: str, after: str) -> float:
    """When the first task after entry ``after`` was queued: its stream id's
    milliseconds (Redis's clock: this machine's wall clock)."""
    import redis

    conn = redis.Redis.from_url(BROKER_URL)
    try:
        first: Any = conn.xrange(queue, min=f"({after}", max="+", count=1)
    finally:
        conn.close()
    entry = first[0][0]
    entry = entry.decode() if isinstance(entry, bytes) else str(entry)
    return int(entry.split("-", 1)[0]) / 1000


def run_workers(job: Job, n: int, label: str, *, profile: Path | None = None) -> RunFacts:
    queue = f"{job.prefix}:tasks:{label}"
    schema, warm = _schema(f"w{n}"), _schema(f"w{n}warm")
    args = ["--broker", BROKER_URL, "--queue", queue, "--app-type", "store",
            "--redis-url", LIMITER_URL, "--redis-prefix", job.prefix,
            "--rate-limit", RATE, "--meeting-list-rate-limit", RATE,
            "--base-url", job.emu.base_url]  # fmt: skip
    logs = job.tmp / label
    logs.mkdir()
    workers: list[Worker] = []
    try:
        workers = start_workers(n, args, job.env, logs, profile=profile)
        # Warm-up: another tenant's window into another schema, unmeasured.
        _run(_enqueue(job, warm, queue, [job.warm_tenant]), job.env, "the warm-up job")
        after = _stream_end(queue)
        warm_cpu = [w.cpu for w in workers]
        emu0 = job.emu.stats()["cpu_s"]
        pg0, redis0 = _servers()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if profile is not None:
            profile_job(workers, start=True)
        machine0 = machine_cpu()
        started, t0 = time.monotonic(), time.perf_counter()
        _run(_enqueue(job, schema, queue, job.tenants), job.env, "the job's export --broker")
        done, scheduler_wall = time.time(), time.perf_counter() - t0
        cpu = [w.cpu - c for w, c in zip(workers, warm_cpu, strict=True)]
        machine1, window = machine_cpu(), time.perf_counter() - t0
        if profile is not None:
            profile_job(workers, start=False)
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        counts = job.emu.count(job.app.app_id, started)
        pg1, redis1 = _servers()
        wall = done - _queued_at(queue, after)
        held, rows = _tables(schema)
    finally:
        stop_workers(workers)
        _drop(schema, warm)
    scheduler = children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime
    return RunFacts(
        wall_s=wall,
        span_s=_span(counts),
        pages=int(counts["participant_list"]),
        meeting_list=int(counts["meeting_list"]),
        rate_limited=int(counts["rate_limited"]),
        errors=int(counts["errors"]),
        client_cpu_s=cpu,
        emulator_cpu_s=float(counts["cpu_s"]) - emu0,
        postgres_cpu_s=pg1 - pg0,
        redis_cpu_s=redis1 - redis0,
        scheduler_cpu_s=scheduler,
        scheduler_wall_s=scheduler_wall,
        window_s=window,
        machine_cpu_s=machine1 - machine0,
        held=held,
        rows=rows,
    )


# --- the benchmark ---------------------------------------------------------------------


WAYS = {
    "ref": "single process",
    "w1": "1 worker",
    "w2": "2 workers",
}


@dataclass
class Profiled:
    facts: RunFacts
    areas: dict[str, float]  # CPU seconds by area
    builtins: dict[str, float]  # own seconds by built-in call
    writes: dict[str, int]  # socket writes by area


def _profiled(job: Job, way: str, tmp: Path) -> Profiled:
    where = tmp / f"profile-{way}"
    if way == "ref":
        facts = run_reference(job, profile=where)
        paths = [where]
    else:
        facts = run_workers(job, 1, "profiled-w1", profile=where)
        paths = [where.with_name(f"{where.name}-0")]
    areas, builtins = profile_areas(paths)
    return Profiled(facts, areas, builtins, socket_writes(paths))


def run(cfg: Config) -> BenchResult:
    res = BenchResult(NAME, TITLE)
    why = _services()
    if why is not None:
        raise RuntimeError(why)
    load_start = os.getloadavg()
    tenants, meetings = cfg.pick((8, 400), (2, 60))
    rounds = cfg.pick(2, 1)
    prefix = f"fvbench-workers:{os.getpid()}-{uuid.uuid4().hex[:8]}"
    runs: dict[str, list[RunFacts]] = {way: [] for way in WAYS}
    profiled: dict[str, Profiled] = {}
    with (
        tempfile.TemporaryDirectory() as tmp_dir,
        EmulatorProcess(meetings=1, anchor=ANCHOR, meeting_list_rate="none", counts=False) as emu,
    ):
        tmp = Path(tmp_dir)
        app = emu.store_app(tenants + 1, meetings, SINCE, UNTIL)
        keys = list(app.tenants)
        tenants_file = tmp / "tenants.txt"
        tenants_file.write_text("\n".join(keys[1:]) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEISHU_")}
        env |= {"FEISHU_APP_ID": app.app_id, "FEISHU_APP_SECRET": app.app_secret,
                "FEISHU_APP_TICKET": app.app_ticket}  # fmt: skip
        job = Job(emu, app, keys[0], keys[1:], tenants_file, env, prefix, tmp)
        try:
            for r in range(rounds):
                runs["ref"].append(run_reference(job))
                runs["w1"].append(run_workers(job, 1, f"r{r}-w1"))
                runs["w2"].append(run_workers(job, 2, f"r{r}-w2"))
            if _cpu_ratio(runs, "w1") > CPU_GOAL:
                profiled = {way: _profiled(job, way, tmp) for way in ("ref", "w1")}
        finally:
            _clean_redis(prefix)
    res.params = {
        "tenants": tenants,
        "meetings_per_tenant": meetings,
        "meetings_listed": job.meetings,
        "participants": job.rows,
        "pages_minimum": job.pages,
        "window": f"{SINCE}..{UNTIL} (31 days before 2026-01-01)",
        "limits": f"both APIs {RATE} (clients), no gateway (emulator)",
        "worker": "--concurrency 4 (default), 50 meetings a task, --redis-url",
        "rounds": rounds,
        "cores": CORES,
    }
    _figures(res, runs)
    _checks(res, job, runs)
    _binds(res, job, runs)
    if profiled:
        _profile_notes(res, profiled)
    _projection(res, job, runs)
    res.notes.append(
        "Load average (1/5/15 min) at this benchmark's start: "
        f"{[round(x, 2) for x in load_start]}, at its end: "
        f"{[round(x, 2) for x in os.getloadavg()]} (anything else running on these 2 "
        "cores takes from every figure here)."
    )
    return res


def _median(runs: list[RunFacts], attr: str) -> float:
    return statistics.median(float(getattr(r, attr)) for r in runs)


def _cpu_ratio(runs: dict[str, list[RunFacts]], way: str) -> float:
    return _median(runs[way], "cpu_per_page_ms") / _median(runs["ref"], "cpu_per_page_ms")


def _stat(done: list[RunFacts], value: Callable[[RunFacts], float], unit: str) -> Stat | None:
    values = [value(r) for r in done]
    return None if any(math.isnan(v) for v in values) else Stat.of(values, unit)


def _figures(res: BenchResult, runs: dict[str, list[RunFacts]]) -> None:
    wall = {
        "ref": "wall time, first export's start to last one's end",
        "w1": "wall time, queued to done (first task in the stream to the scheduler's exit)",
        "w2": "wall time, queued to done",
    }
    for way, name in WAYS.items():
        done = runs[way]
        rows: list[tuple[str, str, Callable[[RunFacts], float], str, str]] = [
            ("wall_s", wall[way], lambda r: r.wall_s, "s", "lower"),
            ("span_s", "first to last participant_list request", lambda r: r.span_s, "s", "lower"),
            ("pages", "participant_list pages (the emulator's count)", lambda r: r.pages,
             "count", "lower"),
            ("pages_per_s", "pages/s (pages / wall time)", lambda r: r.pages_per_s, "pages/s",
             "higher"),
            ("cpu_per_page_ms", "client CPU per page" + (", both workers" if way == "w2" else ""),
             lambda r: r.cpu_per_page_ms, "ms", "lower"),
            ("emulator_cpu_s", "the emulator's CPU", lambda r: r.emulator_cpu_s, "CPU s", "lower"),
            ("postgres_cpu_s", "PostgreSQL's CPU", lambda r: r.postgres_cpu_s, "CPU s", "lower"),
            ("busy_cores", "cores busy, this run's processes (CPU over the run)",
             lambda r: r.busy_cores, "cores", "lower"),
            ("machine_cores", "cores busy, the whole machine (anything else included)",
             lambda r: r.machine_cores, "cores", "lower"),
            ("rate_limited", "429s", lambda r: r.rate_limited, "count", "lower"),
        ]  # fmt: skip
        if way != "ref":
            rows[7:7] = [
                ("redis_cpu_s", "Redis's CPU", lambda r: r.redis_cpu_s, "CPU s", "lower"),
                ("scheduler_cpu_s", "the scheduler's CPU (export --broker, start to exit)",
                 lambda r: r.scheduler_cpu_s, "CPU s", "lower"),
                ("scheduler_wall_s", "the scheduler's start to exit",
                 lambda r: r.scheduler_wall_s, "s", "lower"),
            ]  # fmt: skip
        if way == "w2":
            rows.append(
                ("cpu_share_max", "the busier worker's share of the workers' CPU",
                 lambda r: max(r.client_cpu_s) / sum(r.client_cpu_s), "fraction", "lower")
            )  # fmt: skip
        for key, label, value, unit, better in rows:
            stat = _stat(done, value, unit)
            if stat is not None:
                res.add(f"{way}.{key}", f"{name}: {label}", stat, better)  # type: ignore[arg-type]
    res.ratio(
        "w2_over_w1",
        "Aggregate pages/s, 2 workers / 1 worker (2 cores, shared with the emulator, "
        "PostgreSQL and Redis)",
        "w2.pages_per_s",
        "w1.pages_per_s",
        goal_text="informative: on this machine; what binds is in the notes",
        headline=True,
    )


def _checks(res: BenchResult, job: Job, runs: dict[str, list[RunFacts]]) -> None:
    ref = _median(runs["ref"], "cpu_per_page_ms")
    for way in ("w1", "w2"):
        ratio = _cpu_ratio(runs, way)
        mine = _median(runs[way], "cpu_per_page_ms")
        res.checks.append(
            Check(
                f"{way}.cpu_vs_single",
                f"Client CPU per page, {WAYS[way]} ÷ the single process (same job, "
                f"{job.pages:,} pages)",
                f"{ratio:.2f} ({mine:.3f} vs {ref:.3f} ms per page)",
                f"<= {CPU_GOAL:.2f}",
                ratio <= CPU_GOAL,
                headline=True,
            )
        )
    wrong = [
        f"{WAYS[way]} run {i + 1}: {r.pages} pages, {r.rate_limited} 429s, {r.errors} errors, "
        f"{r.held} meetings, {r.rows} rows"
        for way, done in runs.items()
        for i, r in enumerate(done)
        if (r.pages, r.rate_limited, r.errors, r.held, r.rows)
        != (job.pages, 0, 0, job.meetings, job.rows)
    ]
    res.checks.append(
        Check(
            "complete",
            "Every run: pages, 429s, the tables",
            "; ".join(wrong)
            if wrong
            else f"every run: {job.pages:,} pages (the minimum), "
            f"0 429s, {job.meetings:,} meetings and {job.rows:,} rows in the tables",
            "the minimum pages, 0 429s, the tables equal to the emulator's ground truth",
            not wrong,
            headline=True,
        )
    )


def _binds(res: BenchResult, job: Job, runs: dict[str, list[RunFacts]]) -> None:
    def split(way: str) -> str:
        done = runs[way]
        window = _median(done, "window_s")
        who = {"ref": "the exporter", "w1": "the worker", "w2": "the workers"}[way]
        parts = [
            (who, statistics.median(sum(r.client_cpu_s) for r in done)),
            ("PostgreSQL", _median(done, "postgres_cpu_s")),
            ("the emulator", _median(done, "emulator_cpu_s")),
        ]
        if way != "ref":
            parts += [("Redis", _median(done, "redis_cpu_s")),
                      ("the scheduler", _median(done, "scheduler_cpu_s"))]  # fmt: skip
        text = ", ".join(f"{who} {cpu / window:.2f}" for who, cpu in parts if not math.isnan(cpu))
        return (
            f"{WAYS[way]}: {_median(done, 'machine_cores'):.2f} of {CORES} on the machine, "
            f"{_median(done, 'busy_cores'):.2f} of them this run's ({text})"
        )

    w1, w2 = _median(runs["w1"], "pages_per_s"), _median(runs["w2"], "pages_per_s")
    pg = {way: 1000 * _median(runs[way], "postgres_cpu_s") / _median(runs[way], "pages")
          for way in WAYS}  # fmt: skip
    # Each worker runs 4 tasks (chunks of 50 meetings) at once; a chunk's meetings are
    # written one after the other, each committed before the next.
    slot = {n: 4 * n * _median(runs[f"w{n}"], "wall_s") / job.meetings * 1000 for n in (1, 2)}
    res.notes.append(
        f"What binds on this machine: 2 workers made {w2:,.0f} pages/s against 1 worker's "
        f"{w1:,.0f} ({w2 / w1:.2f}x). Cores busy over each run (CPU / the run's time): "
        + "; ".join(split(way) for way in WAYS)
        + ". Every process of a worker run shares these "
        f"{CORES} cores: a second worker can only take what the first left idle, and "
        "PostgreSQL's share grows with the workers' commits: "
        f"{pg['w1']:.2f} ms of PostgreSQL CPU per page with 1 worker, {pg['w2']:.2f} with 2, "
        f"{pg['ref']:.2f} for the single process. Cores left idle went to waiting: each "
        "worker runs 4 tasks at once, and a task writes its chunk's meetings one after "
        "the other, each committed before the next, so the workers together committed a "
        f"meeting every {slot[1]:.1f} ms per task with 1 worker and every {slot[2]:.1f} ms "
        "with 2 (wall time × tasks in flight / meetings), round trips to PostgreSQL "
        "included."
    )


def _profile_notes(res: BenchResult, profiled: dict[str, Profiled]) -> None:
    ref, w1 = profiled["ref"], profiled["w1"]
    areas = sorted(set(ref.areas) | set(w1.areas), key=lambda a: -(w1.areas.get(a, 0.0)))

    def per_page(p: Profiled, seconds: float) -> float:
        return 1000 * seconds / p.facts.pages

    def both(a: str) -> str:
        mine, theirs = per_page(w1, w1.areas.get(a, 0.0)), per_page(ref, ref.areas.get(a, 0.0))
        return f"{a}: {mine:.3f} vs {theirs:.3f}"

    def writes_of(a: str) -> str:
        mine, theirs = w1.writes.get(a, 0) / w1.facts.pages, ref.writes.get(a, 0) / ref.facts.pages
        return f"{a}: {mine:.2f} vs {theirs:.2f}"

    table = "; ".join(both(a) for a in areas)
    meetings = {name: p.facts.held for name, p in profiled.items()}
    writes = "; ".join(
        writes_of(a)
        for a in sorted(set(ref.writes) | set(w1.writes), key=lambda a: -w1.writes.get(a, 0))
    )
    top = sorted(w1.builtins.items(), key=lambda kv: -kv[1])[:3]
    calls = ", ".join(
        f"{name} {per_page(w1, t):.3f} vs {per_page(ref, ref.builtins.get(name, 0.0)):.3f}"
        for name, t in top
    )
    res.notes.append(
        "Where a worker's extra CPU goes (a 1-worker run and a single-process run of the "
        "same job made again under cProfile with a CPU clock, BENCH_WORKER_PROFILE; its "
        "overhead inflates both, so compare the two, not with the figures above: "
        f"{per_page(w1, sum(w1.areas.values())):.3f} vs "
        f"{per_page(ref, sum(ref.areas.values())):.3f} ms per page in all). Own CPU per "
        "page by area, the worker vs the single process, "
        "socket and C calls charged to the library that made them (ms): " + table + ". "
        "Socket writes per page by the library that made them, the worker vs the single "
        "process (each a system call and a wake-up of the other end, on the same 2 cores): "
        + writes
        + ". The costliest C calls, worker vs single process (ms per page): "
        + calls
        + f" (the profiled runs: worker {w1.facts.pages:,} pages of "
        f"{meetings['w1']:,} meetings, single process {ref.facts.pages:,} of "
        f"{meetings['ref']:,})."
    )
    res.notes.append(
        "Why (the code, not this run): a worker's task is a chunk of 50 meetings exported "
        "through the fan-out into the database output (feishu_vc_async/workers/_tasks.py), "
        "committing every 0.5 s as the single process does; but each task opens a database "
        "connection of its own (connecting, finding the tables made, a temporary table, "
        "the chunk's lock, reading what is held: about 14 ms a task here), its commits are "
        "those of 4 tasks at once instead of one, and every request first asks the shared "
        "Redis limiter (a round trip and a script), which the single process does not."
    )


def _projection(res: BenchResult, job: Job, runs: dict[str, list[RunFacts]]) -> None:
    worker_ms = _median(runs["w2"], "cpu_per_page_ms")
    pages = _median(runs["w2"], "pages")
    pg_ms = 1000 * _median(runs["w2"], "postgres_cpu_s") / pages
    redis_ms = 1000 * _median(runs["w2"], "redis_cpu_s") / pages
    machine = CORES * 1000 / worker_ms  # a machine of these cores running workers only
    per_tenant = PLATFORM_PER_TENANT
    tenants_per_machine = machine / per_tenant
    pg_core = 1000 / pg_ms if pg_ms > 0 else math.inf
    redis_core = 1000 / redis_ms if redis_ms > 0 else math.inf
    measured = _median(runs["w2"], "pages_per_s")
    slot_ms = 8 * _median(runs["w2"], "wall_s") / job.meetings * 1000  # 2 workers x 4 tasks
    per_meeting = job.pages / job.meetings
    res.checks.append(
        Check(
            "projection",
            "PROJECTION (computed, not measured): N worker machines like this one",
            f"aggregate ≈ N × {machine:,.0f} pages/s ({CORES} cores ÷ {worker_ms:.3f} ms of "
            f"worker CPU per page), until the platform's budget (tenants × "
            f"{per_tenant:.2f} pages/s: {tenants_per_machine:,.0f} tenants per machine) or "
            f"PostgreSQL ({pg_ms:.3f} ms CPU per page: ≈ {pg_core:,.0f} pages/s per "
            "database core) binds",
            "informative: a projection",
            None,
            headline=True,
        )
    )
    res.notes.append(
        "Projection, not a measurement. It assumes what this machine could not show: a "
        f"worker machine of {CORES} cores running only workers, CPU-bound at the CPU per page "
        f"measured here with 2 workers ({worker_ms:.3f} ms), i.e. {machine:,.0f} pages/s per "
        f"machine, with the emulator's part played by the platform and PostgreSQL and Redis "
        f"on machines of their own. Then N machines give N × {machine:,.0f} pages/s until "
        f"one of these binds first: (1) the platform: participant_list allows 100 requests "
        f"a minute per app and tenant, {per_tenant:.2f} pages/s a tenant, so the "
        f"{len(job.tenants)} tenants here could use {len(job.tenants) * per_tenant:.1f} "
        f"pages/s in all, and one worker machine has room for about "
        f"{tenants_per_machine:,.0f} tenants' full budgets (meeting_list's own 100 a minute "
        "a tenant is not the bound: a page of it names up to 100 meetings); (2) the "
        f"database: {pg_ms:.3f} ms of PostgreSQL CPU per page here (2 workers), "
        f"≈ {pg_core:,.0f} pages/s per database core, so a database core serves about "
        f"{pg_core / machine:.2f} worker machines; (3) Redis: {redis_ms:.3f} ms per page, "
        f"≈ {redis_core:,.0f} pages/s per core. Unless the round trips bind first: a task "
        f"commits one meeting at a time ({slot_ms:.1f} ms a meeting here, 2 workers, "
        f"{per_meeting:.2f} pages a meeting), so a worker of --concurrency 4 delivers at most "
        f"about {4000 / slot_ms * per_meeting:,.0f} pages/s while its round trips take that "
        "long (longer to a database across a network), and a machine needs enough workers "
        "or --concurrency to reach its CPU bound. Measured on this one machine, sharing its "
        f"cores with everything: {measured:,.0f} pages/s with 2 workers. Nothing here was "
        "run on more than one machine."
    )
