"""Export through the CLI (``feishu-vc export``) to JSONL, CSV and Parquet: wall time,
the exporter's peak RSS, and what the export costs the client per million rows, apart
from what the emulator costs.

Each format gets a fresh emulator in its own process, holding webinars of 2,500
participants (nothing generated before the export asks), and the exporter runs as
``python -m feishu_vc_async export --meetings FILE --out X.{jsonl,csv,parquet}`` in a
fresh process with a limit far above what it can reach (the CLI always paces). JSONL
exports 1,000,000 participants (400 webinars); CSV and Parquet 300,000 (120 webinars;
quick mode: 25,000 for each format). The row count of every output is checked against
the emulator's.

* **Wall time** and **rows/s** are end to end: interpreter start, token fetch, every
  request and, for Parquet, the conversion of the journal at the end. On 2 cores the
  emulator (generating each meeting's rows on first read) and the exporter share the
  machine, so the wall time is bounded by both processes' CPU.
* **Exporter CPU** is the exporter process's own user + system CPU seconds (its
  ``getrusage``); **emulator CPU** the emulator process's over the same export. They are
  separate processes, so the two do not include each other.
* **Client CPU per 1M rows** and **client rows/s** are the exporter's own work per row:
  HTTP, decode, row building, encoding, writing, checkpoint commits (and Parquet's
  conversion). They are measured from the exporter's CPU seconds, not from a replay of
  recorded pages: the CPU of the large export minus that of a one-meeting export of the
  same format (2,500 rows: what start-up, imports and the token fetch cost), over the
  rows between them. Client rows/s is one core's rate if the server cost nothing.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._emulator_proc import EmulatorProcess, MeetingFacts
from ._export_runs import (
    UNREACHABLE_RATE,
    WEBINAR_SIZE,
    run_exporter,
    webinar_emulator,
    write_meetings,
)
from ._harness import BenchResult, Check, Config, NotLanded, Stat
from ._peers import require_client

NAME = "export"
TITLE = "4b. Export to JSONL, CSV and Parquet through the CLI"
# Participants per format: JSONL is the headline (the "1,000,000 rows in 37 s");
# CSV and Parquet cost more per row and take fewer, for the whole to stay near 2 minutes.
FULL_TARGETS = {"jsonl": 1_000_000, "csv": 300_000, "parquet": 300_000}
QUICK_TARGET = 25_000
JSONL_GOAL_S = 37.0  # the figure for 1,000,000 rows on this machine


def _have_cli() -> bool:
    try:
        from feishu_vc_async import cli  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class _Run:
    rows: int
    seconds: float
    exporter_cpu_s: float
    peak_rss_mb: float
    emulator_cpu_s: float
    output_bytes: int


def _count_rows(out: Path, fmt: str) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(out).metadata.num_rows)
    with out.open("rb") as f:
        lines = sum(1 for _ in f)
    return lines - 1 if fmt == "csv" else lines  # CSV: the header line


def _export(
    emu: EmulatorProcess, meetings: list[MeetingFacts], fmt: str, tmp: Path, tag: str
) -> _Run:
    """One CLI export of ``meetings`` to a fresh file, checked against the emulator's rows."""
    meetings_file = tmp / f"{tag}.meetings.jsonl"
    write_meetings(meetings_file, meetings)
    out = tmp / f"{tag}.{fmt}"
    cmd = [
        "feishu_vc_async", "export",
        "--meetings", str(meetings_file), "--out", str(out),
        "--base-url", emu.base_url, "--rate-limit", UNREACHABLE_RATE,
        "--progress", "none", "-q",
    ]  # fmt: skip
    run = run_exporter(emu, cmd, tmp / f"{tag}.usage.json", f"export to {fmt}")
    expected = len(meetings) * WEBINAR_SIZE
    rows = _count_rows(out, fmt)
    if rows != expected:
        raise RuntimeError(f"export to {fmt} wrote {rows} rows, the emulator holds {expected}")
    size = out.stat().st_size
    out.unlink()
    return _Run(rows, run.seconds, run.exporter_cpu_s, run.peak_rss_mb, run.emulator_cpu_s, size)


def _measure(fmt: str, target: int, tmp: Path) -> tuple[_Run, _Run]:
    """A one-meeting export (the fixed cost), then the large one, against an emulator of
    their own that has generated nothing yet."""
    webinars = -(-target // WEBINAR_SIZE)
    with webinar_emulator(webinars) as emu:
        small = _export(emu, emu.meetings[-1:], fmt, tmp, f"{fmt}-small")
        large = _export(emu, emu.meetings[:webinars], fmt, tmp, fmt)
    return small, large


def run(cfg: Config) -> BenchResult:
    require_client()
    if not _have_cli():
        raise NotLanded("the export CLI (feishu_vc_async.cli) has not landed yet")
    res = BenchResult(NAME, TITLE)
    targets = {fmt: cfg.pick(n, QUICK_TARGET) for fmt, n in FULL_TARGETS.items()}
    res.params = {
        "participants_per_meeting": WEBINAR_SIZE,
        **{f"{fmt}_participants": n for fmt, n in targets.items()},
        "rate_limit": UNREACHABLE_RATE,
        "runs": 1,
    }
    runs: dict[str, _Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, target in targets.items():
            small, large = _measure(fmt, target, Path(tmp))
            runs[fmt] = large
            client_cpu = (large.exporter_cpu_s - small.exporter_cpu_s) / (large.rows - small.rows)
            if client_cpu <= 0 and cfg.quick:
                # A smoke run's few rows cost less than a busy machine's noise in the
                # start-up: the large export's CPU over its rows, start-up and all.
                client_cpu = large.exporter_cpu_s / large.rows
                res.notes.append(
                    f"{fmt}: the per-row cost is the whole export's CPU over its rows "
                    "(quick mode: too few rows to tell it from the start-up's)."
                )
            elif client_cpu <= 0:
                raise RuntimeError(
                    f"{fmt}: the large export took no more CPU than the one-meeting one "
                    f"({large.exporter_cpu_s:.2f} s vs {small.exporter_cpu_s:.2f} s): too "
                    "few rows to tell the per-row cost from the start-up's"
                )
            _figures(res, fmt, large, client_cpu)
            res.params[f"{fmt}_output_mb"] = round(large.output_bytes / 1e6, 1)
            res.params[f"{fmt}_fixed_cpu_s"] = round(small.exporter_cpu_s, 2)
    headline = runs["jsonl"]
    met = headline.seconds < JSONL_GOAL_S if headline.rows >= 1_000_000 else None
    res.checks.append(
        Check(
            "export",
            f"Export {headline.rows:,} participants to JSONL (CLI)",
            f"{headline.seconds:.1f} s, {headline.rows / headline.seconds:,.0f} rows/s, "
            f"peak RSS {headline.peak_rss_mb:.1f} MB",
            f"< {JSONL_GOAL_S:.0f} s" + ("" if met is not None else " (at 1,000,000: see below)"),
            met,
            headline=True,
        )
    )
    for fmt in targets:
        client = res.figure(f"{fmt}.client_rows_per_s").stat.median
        per_million = res.figure(f"{fmt}.client_cpu_per_1m").stat.median
        res.checks.append(
            Check(
                f"export_{fmt}",
                f"Export client cost, {fmt.upper() if fmt != 'parquet' else 'Parquet'}",
                f"{client:,.0f} rows/s per core ({per_million:.1f} CPU s per 1M rows), "
                f"peak RSS {runs[fmt].peak_rss_mb:.1f} MB",
                "informative",
                None,
                headline=True,
            )
        )
    if cfg.quick:
        res.notes.append(f"Quick mode: {QUICK_TARGET:,} participants per format.")
    res.notes.append(
        "Each format has an emulator of its own that has generated nothing before the "
        "export: the wall time includes the emulator making every row once (about as "
        "much CPU as the exporter's, on the other core)."
    )
    return res


def _figures(res: BenchResult, fmt: str, run: _Run, client_cpu_per_row: float) -> None:
    n = f"{run.rows:,}"
    res.add(
        f"{fmt}.seconds", f"{fmt}: export {n} participants, wall time", Stat.of([run.seconds], "s")
    )
    res.add(
        f"{fmt}.rows_per_s",
        f"{fmt}: participants written per second (wall)",
        Stat.of([run.rows / run.seconds], "rows/s"),
        better="higher",
    )
    res.add(f"{fmt}.exporter_cpu_s", f"{fmt}: exporter CPU", Stat.of([run.exporter_cpu_s], "CPU s"))
    res.add(
        f"{fmt}.emulator_cpu_s",
        f"{fmt}: emulator CPU over the same export",
        Stat.of([run.emulator_cpu_s], "CPU s"),
    )
    res.add(
        f"{fmt}.client_cpu_per_1m",
        f"{fmt}: client CPU per 1,000,000 rows (start-up excluded)",
        Stat.of([client_cpu_per_row * 1e6], "CPU s"),
    )
    res.add(
        f"{fmt}.client_rows_per_s",
        f"{fmt}: client rows per CPU second",
        Stat.of([1 / client_cpu_per_row], "rows/s"),
        better="higher",
    )
    res.add(f"{fmt}.peak_rss_mb", f"{fmt}: exporter peak RSS", Stat.of([run.peak_rss_mb], "MB"))
