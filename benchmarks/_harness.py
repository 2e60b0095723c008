"""What every benchmark shares: repeats and warm-up, summary statistics, machine facts,
and the writers of results.json and RESULTS.md.

A benchmark module exposes ``NAME``, ``TITLE`` and ``run(cfg: Config) -> BenchResult``.
Its figures are medians with a spread (min/max and the quartiles) over several runs
taken after a warm-up; its ratios compare our median with the peer's median of the
same run. Nothing here edits a number after the fact: RESULTS.md is rendered from the
results of the run that writes it.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

Better = Literal["lower", "higher"]
Status = Literal["ok", "not_landed", "failed", "partial"]


class NotLanded(Exception):
    """The feature a benchmark measures is not in the package yet."""


@dataclass(frozen=True)
class Config:
    """How hard to run: ``quick`` shrinks sizes and takes one repeat (tests, smoke runs)."""

    quick: bool = False
    repeats: int = 5
    warmup: int = 1

    @classmethod
    def for_mode(cls, quick: bool) -> Config:
        return cls(quick=True, repeats=1, warmup=1) if quick else cls()

    def pick(self, full: Any, quick: Any) -> Any:
        """``full`` in a full run, ``quick`` in a quick one (sizes, repeats, durations)."""
        return quick if self.quick else full


@dataclass(frozen=True)
class Stat:
    """Median and spread of several runs of one figure."""

    unit: str
    median: float
    min: float
    max: float
    q1: float
    q3: float
    runs: list[float]

    @classmethod
    def of(cls, samples: Sequence[float], unit: str) -> Stat:
        if not samples:
            raise ValueError("a figure needs at least one run")
        data = sorted(float(s) for s in samples)
        if len(data) >= 2:
            q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
        else:
            q1 = q3 = data[0]
        return cls(
            unit=unit,
            median=statistics.median(data),
            min=data[0],
            max=data[-1],
            q1=q1,
            q3=q3,
            runs=[float(s) for s in samples],
        )


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    stat: Stat
    better: Better = "lower"


@dataclass(frozen=True)
class Ratio:
    """How many times better ours is than the peer (> 1 means ours wins), from medians."""

    key: str
    label: str
    value: float
    goal: float | None = None
    goal_text: str = ""
    headline: bool = False

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.value >= self.goal


@dataclass
class BenchResult:
    name: str
    title: str
    status: Status = "ok"
    figures: list[Figure] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    # Goals that are not a ratio of two figures (zero 429s, flat memory ...).
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    # What is measured and how: the benchmark module's docstring.
    description: str = ""

    def add(self, key: str, label: str, stat: Stat, better: Better = "lower") -> Stat:
        self.figures.append(Figure(key, label, stat, better))
        return stat

    def figure(self, key: str) -> Figure:
        for fig in self.figures:
            if fig.key == key:
                return fig
        raise KeyError(key)

    def ratio(
        self,
        key: str,
        label: str,
        ours: str,
        peer: str,
        *,
        goal: float | None = None,
        goal_text: str = "",
        headline: bool = False,
    ) -> Ratio:
        """Ratio of two figures' medians, oriented so that > 1 means ours is better."""
        a, b = self.figure(ours), self.figure(peer)
        if a.better != b.better:
            raise ValueError(f"{ours} and {peer} are not comparable")
        if a.better == "lower":
            value = b.stat.median / a.stat.median if a.stat.median > 0 else math.inf
        else:
            value = a.stat.median / b.stat.median if b.stat.median > 0 else math.inf
        r = Ratio(key, label, value, goal, goal_text, headline)
        self.ratios.append(r)
        return r

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for r, d in zip(self.ratios, out["ratios"], strict=True):
            d["met"] = r.met
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BenchResult:
        return cls(
            name=d["name"],
            title=d["title"],
            status=d["status"],
            figures=[
                Figure(f["key"], f["label"], Stat(**f["stat"]), f["better"]) for f in d["figures"]
            ],
            ratios=[
                Ratio(r["key"], r["label"], r["value"], r["goal"], r["goal_text"], r["headline"])
                for r in d["ratios"]
            ],
            checks=[Check(**c) for c in d.get("checks", [])],
            notes=list(d["notes"]),
            params=dict(d["params"]),
            elapsed_s=float(d["elapsed_s"]),
            description=str(d.get("description", "")),
        )


@dataclass(frozen=True)
class Check:
    """A goal stated as a pass/fail fact with the measured value beside it."""

    key: str
    label: str
    measured: str
    goal_text: str
    met: bool | None  # None: informative, no goal
    headline: bool = False


# --- measuring -----------------------------------------------------------------------


def time_per_call(
    fns: dict[str, Callable[[], object]],
    cfg: Config,
    *,
    target_s: float = 0.2,
    repeats: int | None = None,
) -> dict[str, Stat]:
    """Seconds per call of each function: calibrate a loop to ~``target_s``, warm up,
    then repeat, the functions taking turns within each repeat.

    Time is the measuring thread's CPU time (``time.thread_time``): the work is pure
    single-threaded CPU, so on an idle machine it equals wall time, and on a shared one
    other processes' load does not land on whichever side happened to run then. Taking
    turns spreads what remains (cache pressure, frequency changes) over both sides.
    The garbage collector stays on: the objects a decoder creates and the collections
    they cause are part of its real cost.
    """
    clock = time.thread_time
    target = target_s / 4 if cfg.quick else target_s
    numbers: dict[str, int] = {}
    for key, fn in fns.items():
        number = 1
        while True:
            t0 = clock()
            for _ in range(number):
                fn()
            dt = clock() - t0
            if dt >= target / 4 or number >= 1_000_000:
                break
            number *= 4
        numbers[key] = max(1, int(number * target / max(dt, 1e-9)))
    for _ in range(cfg.warmup):
        for key, fn in fns.items():
            for _ in range(numbers[key]):
                fn()
    samples: dict[str, list[float]] = {key: [] for key in fns}
    gc.collect()
    for _ in range(repeats or cfg.repeats):
        for key, fn in fns.items():
            number = numbers[key]
            t0 = clock()
            for _ in range(number):
                fn()
            samples[key].append((clock() - t0) / number)
    return {key: Stat.of(runs, "s") for key, runs in samples.items()}


def scale_stat(stat: Stat, factor: float, unit: str) -> Stat:
    """The same runs in another unit (seconds → microseconds, say)."""
    return Stat.of([r * factor for r in stat.runs], unit)


# --- the machine ---------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        # Other work on the machine bends every figure: the load is on record.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": mem_total,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {
            name: _version(name)
            for name in ("feishu-vc-async", "aiohttp", "msgspec", "lark-oapi", "httpx")
        },
    }


# --- writing -------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if math.isinf(value) or math.isnan(value):
        return str(value)
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _ratio_text(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def write_results(
    results: list[BenchResult],
    out_dir: Path,
    *,
    quick: bool,
    started: datetime,
    total_elapsed: float,
    command: str,
    machine_info_start: dict[str, Any] | None = None,
    merge: bool = False,
    order: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write results.json and RESULTS.md of this run into ``out_dir``.

    ``merge`` keeps the benchmarks already in ``out_dir``'s results.json that this run
    did not run (a section replaced by this run's is dropped), so one benchmark can be
    added to a full run's results without running the others again. Each section stays
    as the run that wrote it left it: ``runs`` in results.json and the header of
    RESULTS.md say which run wrote which; ``order`` (benchmark names) orders the
    sections. A quick run and a full run never merge (``MergeError``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    this_run = {
        "date": started.astimezone(UTC).isoformat(timespec="seconds"),
        "command": command,
        "quick": quick,
        "total_elapsed_s": round(total_elapsed, 1),
        "machine": machine_info_start or machine_info(),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "benchmarks": [r.name for r in results],
    }
    runs = [this_run]
    if merge:
        earlier = read_for_merge(json_path, quick=quick)
        if earlier is not None:
            runs, kept = _merged_runs(earlier, this_run)
            results = _ordered([*kept, *results], order)
    base = runs[0]
    doc = {
        # The first run's facts (the run the file started from); ``runs`` has each run.
        **{k: v for k, v in base.items() if k != "benchmarks"},
        "runs": runs,
        "benchmarks": {r.name: r.to_json() for r in results},
    }
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    md_path = out_dir / "RESULTS.md"
    md_path.write_text(render_markdown(doc, results))
    return json_path, md_path


class MergeError(Exception):
    """The results in the output directory cannot take this run's."""


def read_for_merge(json_path: Path, *, quick: bool) -> dict[str, Any] | None:
    """The results a run with ``merge`` adds to (``None``: there are none yet);
    ``MergeError`` if they are not readable or not of the same mode (quick or full)."""
    if not json_path.exists():
        return None
    try:
        doc: dict[str, Any] = json.loads(json_path.read_text())
        earlier_quick = bool(doc["quick"])
        doc["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MergeError(f"{json_path}: not a results file to merge into ({exc!r})") from None
    if earlier_quick != quick:
        mode = {True: "a quick run", False: "a full run"}
        raise MergeError(
            f"{json_path} holds {mode[earlier_quick]}'s results; {mode[quick]} does not merge "
            "into it (sizes and repeats differ)"
        )
    return doc


def _merged_runs(
    earlier: dict[str, Any], this_run: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[BenchResult]]:
    """The runs that wrote the merged file, each with the benchmarks it still holds, and
    the earlier benchmarks this run leaves in place."""
    replaced = set(this_run["benchmarks"])
    runs = earlier.get("runs") or [
        {
            **{k: v for k, v in earlier.items() if k not in ("benchmarks", "runs")},
            "benchmarks": list(earlier["benchmarks"]),
        }
    ]
    kept_runs = []
    for run in runs:
        names = [n for n in run["benchmarks"] if n not in replaced]
        if names:
            kept_runs.append({**run, "benchmarks": names})
    kept = [
        BenchResult.from_json(d)
        for name, d in earlier["benchmarks"].items()
        if name not in replaced
    ]
    return [*kept_runs, this_run], kept


def _ordered(results: list[BenchResult], order: Sequence[str]) -> list[BenchResult]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(results, key=lambda r: rank.get(r.name, len(rank)))


def render_markdown(doc: dict[str, Any], results: list[BenchResult]) -> str:
    m = doc["machine"]
    quick_text = ", QUICK mode: smoke sizes, one repeat" if doc["quick"] else ""
    runs: list[dict[str, Any]] = doc.get("runs") or []
    lines = [
        "# Benchmark results",
        "",
        "Written by `" + doc["command"] + "` on " + doc["date"] + " (total "
        f"{doc['total_elapsed_s']:.0f} s{quick_text}). Every number below comes from "
        "that run; nothing is edited by hand.",
        "",
        _machine_line(m, doc.get("load_average_end")),
        "",
    ]
    if len(runs) > 1:
        lines[4] = lines[4].replace("Machine:", "Machine of the first run:", 1)
        lines[2] = (
            "Written by " + str(len(runs)) + " runs" + quick_text.replace(",", ";", 1) + ", "
            "each section by one of them, as the section says; nothing is edited by hand. "
            "The first: `" + doc["command"] + "` on " + doc["date"] + " (total "
            f"{doc['total_elapsed_s']:.0f} s), which wrote "
            + ", ".join(f"`{n}`" for n in runs[0]["benchmarks"])
            + ". Added to it with `--merge`, without running the others again: "
            + "; ".join(
                f"`{r['command']}` on {r['date']} (total {r['total_elapsed_s']:.0f} s): "
                + ", ".join(f"`{n}`" for n in r["benchmarks"])
                for r in runs[1:]
            )
            + "."
        )
        for r in runs[1:]:
            lines += [
                f"Machine of the run of {r['date']}: "
                + ("the same" if _same_machine(r["machine"], m) else _machine_facts(r["machine"]))
                + f"; load average (1/5/15 min) at its start: "
                f"{r['machine']['load_average_1_5_15']}, at its end: {r['load_average_end']}.",
                "",
            ]
    lines += [
        "## Headline",
        "",
        "| Figure | Measured | Goal | Met |",
        "|---|---|---|---|",
    ]
    unmet: list[str] = []
    for r in results:
        if r.status in ("not_landed", "failed"):
            lines.append(f"| {r.title} | {r.status.replace('_', ' ')} | | **no** |")
            unmet.append(f"{r.title}: {r.status.replace('_', ' ')} ({'; '.join(r.notes[:1])})")
            continue
        for ratio in r.ratios:
            if ratio.headline:
                met = "" if ratio.met is None else ("yes" if ratio.met else "**no**")
                lines.append(
                    f"| {ratio.label} | {_ratio_text(ratio.value)} | {ratio.goal_text} | {met} |"
                )
                if ratio.met is False:
                    unmet.append(f"{ratio.label}: {_ratio_text(ratio.value)} ({ratio.goal_text})")
        for check in r.checks:
            if check.headline:
                met = {None: "", True: "yes", False: "**no**"}[check.met]
                lines.append(f"| {check.label} | {check.measured} | {check.goal_text} | {met} |")
                if check.met is False:
                    unmet.append(f"{check.label}: {check.measured} ({check.goal_text})")
    lines.append("")
    if unmet:
        lines.append("Goals NOT met in " + ("these runs:" if len(runs) > 1 else "this run:"))
        lines.append("")
        lines.extend(f"- {u}" for u in unmet)
    else:
        lines.append(
            "Every headline goal is met in " + ("these runs." if len(runs) > 1 else "this run.")
        )
    lines.append("")
    lines.append(
        "Ratios are ours over the peer's (or the peer's time over ours), from medians, "
        "so > 1 means ours is better. Spread: min–max of the runs (and the quartiles "
        "in results.json). The peers are the official SDK, lark-oapi, used as its own "
        "code and docs show, and two hand-written aiohttp scripts (an aiolimiter "
        "script, and a raw aiohttp + msgspec loop as the ceiling of doing nothing "
        "else), described in the benchmarks that run them; the emulator runs in a "
        "separate process in every client benchmark."
    )
    lines += [
        "",
        "Run everything with `make bench` (or `python -m benchmarks.run`); one benchmark "
        "with `python -m benchmarks.run --only NAME` (names: "
        + ", ".join(f"`{r.name}`" for r in results)
        + "), smoke sizes with `--quick`. Partial and quick runs write to "
        "benchmarks/.scratch/ so this file stays the full run's; `--only NAME --merge` "
        "writes here, replacing that benchmark's section and keeping the others.",
    ]
    for r in results:
        lines += ["", f"## {r.title}", ""]
        if r.description:
            lines += [r.description, ""]
        written_by = next((run for run in runs if r.name in run["benchmarks"]), None)
        by = f" (the run of {written_by['date']})" if len(runs) > 1 and written_by else ""
        lines.append(f"Status: {r.status.replace('_', ' ')}; took {r.elapsed_s:.1f} s{by}.")
        if r.params:
            lines.append("Parameters: " + ", ".join(f"{k}={v}" for k, v in r.params.items()) + ".")
        if r.figures:
            lines += [
                "",
                "| Figure | Median | Spread (min–max) | Unit | Runs |",
                "|---|---|---|---|---|",
            ]
            for f in r.figures:
                s = f.stat
                lines.append(
                    f"| {f.label} | {_fmt(s.median)} | {_fmt(s.min)} – {_fmt(s.max)} | "
                    f"{s.unit} | {len(s.runs)} |"
                )
        if r.ratios:
            lines += ["", "| Ratio (> 1: ours better) | Value | Goal | Met |", "|---|---|---|---|"]
            for ratio in r.ratios:
                met = "" if ratio.met is None else ("yes" if ratio.met else "**no**")
                lines.append(
                    f"| {ratio.label} | {_ratio_text(ratio.value)} | {ratio.goal_text} | {met} |"
                )
        if r.checks:
            lines += ["", "| Check | Measured | Goal | Met |", "|---|---|---|---|"]
            for c in r.checks:
                met = {None: "", True: "yes", False: "**no**"}[c.met]
                lines.append(f"| {c.label} | {c.measured} | {c.goal_text} | {met} |")
        if r.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in r.notes)
    lines.append("")
    return "\n".join(lines)


def _machine_facts(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu_model']}, {m['cores']} cores, {m['memory']}, {m['os']}, {m['python']}. "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    )


def _machine_line(m: dict[str, Any], load_end: list[float] | None) -> str:
    return (
        f"Machine: {_machine_facts(m)}"
        + f". Load average (1/5/15 min) at the start: {m['load_average_1_5_15']}"
        + (f", at the end: {load_end}" if load_end is not None else "")
        + "."
    )


def _same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same kind of machine and the same versions (the load may differ)."""
    facts = ("cpu_model", "cores", "memory", "os", "python", "packages")
    return all(a.get(k) == b.get(k) for k in facts)
