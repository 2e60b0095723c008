"""Export into a database: loading 1,000,000 participant rows into PostgreSQL, ours
against a hand-written ``executemany`` loader and a bare ``COPY``; then the whole export
into PostgreSQL against the same export to JSONL, and into SQLite.

**Loading** (``benchmarks/_db_loaders.py``): the same prepared pages for every loader,
``PageItem``s of the emulator's data generator (its meeting sizes: 26,000 meetings, most
of a few participants, some of hundreds, a webinar of 3,000; 1,028,774 rows; quick mode:
400 meetings), built once, before any clock starts. Every loader turns them into records
with our own ``participant_records``, so the conversion is the same and only the
loading differs, and loads into a fresh schema holding the same tables (the
participants table with its primary key), dropped after; PostgreSQL checkpoints before
each, so no loader pays for another's WAL. One difference is ours alone: our store sends
the two timestamps of a row as integers through an asyncpg codec of its own
(``integer_timestamps``), where the hand-written loaders send asyncpg's datetimes, as a
user's code does (asyncpg's encoding of an aware datetime costs about as much as the
rest of the row); the fourth loader, the bare COPY with the timestamps as ours, shows
that part apart.

* **Ours**: the database output (``database_output(url, schema=...)``) driven by the
  export's own ledger as an export drives it: every page, a transaction committing the
  rows, the meetings and the progress together at most every half second (the default
  ``commit_interval``), exactly once.
* **executemany**: what a careful user writes: ``executemany`` of ``INSERT ... ON
  CONFLICT (key) DO UPDATE`` (a rerun replaces instead of failing) in batches of the
  same size as ours, a transaction per batch of meetings at the same cadence.
* **COPY**: the ceiling: one bare ``copy_records_to_table`` of every record, converted
  as the COPY streams them (conversion and the server's work overlap), with no
  transaction logic, no meetings table and no progress.
* **COPY, integer timestamps**: the same, its timestamps sent as ours are: the ceiling
  of the loading alone (informative).

The connection and the tables are made before each clock starts; rows/s is the rows
over the time from the first page to the last commit, and every loader's row count is
checked after. One warm-up round on a tenth of the pages, then rounds in which the
loaders take turns; figures are medians over the rounds. *Conversion alone* is
``participant_records`` over every page with no database: the part of each loader's
time they all share. *PostgreSQL CPU* is the server's CPU over each load (its processes
and the backends it reaped; best effort, and anything else using the server counts).

**Whole export**: ``export(client, ExportJob(meetings, output))`` through the library's
API (``benchmarks/_export_child.py``), in a process of its own against an emulator in
another (fresh for every export, nothing generated before it asks), as ``bench_export``
runs its exports: 400 webinars of 2,500 participants (1,000,000 rows; quick mode:
25,000), into JSONL (``file_output``), PostgreSQL (``database_output`` into a fresh
schema) and SQLite (``database_output("sqlite:///...")``). Wall time from interpreter
start to exit, the exporter's peak RSS, and the row count of each output checked. The
ways take turns; medians over the rounds. On 2 cores the emulator, the exporter and, for
PostgreSQL, the server share the machine.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import tempfile
import time
from pathlib import Path

from ._db_exports import WAYS, WayRun, export_once
from ._db_loaders import (
    LOADERS,
    POSTGRES_URL,
    REAPED,
    Prepared,
    connect,
    convert_all,
    count_rows,
    fresh_schema,
    postgres_cpu,
    prepare,
    subset,
)
from ._harness import BenchResult, Check, Config, NotLanded, Stat
from ._peers import require_client

NAME = "database"
TITLE = "4c. Export into PostgreSQL and SQLite"
LOAD_MEETINGS = 26_000  # 1,028,774 rows of the emulator's sizes
QUICK_LOAD_MEETINGS = 400
EXPORT_TARGET = 1_000_000
QUICK_EXPORT_TARGET = 25_000
SEED, ANCHOR = 29, 1_760_000_000  # the same data every run
EXECUTEMANY_GOAL = 2.0
COPY_GOAL = 0.8
EXPORT_GOAL = 1.3  # the PostgreSQL export's time within 1.3x the JSONL export's
RSS_FLAT = 1.10  # its peak RSS within 10% of the JSONL export's
_LABELS = {
    "ours": "ours (database output, ledger, exactly once)",
    "executemany": "executemany upsert, a transaction per batch",
    "copy": "bare copy_records_to_table (the ceiling)",
    "copy_integer_times": "bare copy_records_to_table, timestamps sent as ours are",
}


def run(cfg: Config) -> BenchResult:
    require_client()
    try:
        import asyncpg  # noqa: F401
    except ImportError as exc:
        raise NotLanded("asyncpg is not installed (the postgres extra)") from exc
    res = BenchResult(NAME, TITLE)
    data = prepare(cfg.pick(LOAD_MEETINGS, QUICK_LOAD_MEETINGS), seed=SEED, anchor=ANCHOR)
    res.params = {
        "postgres": POSTGRES_URL,
        "load_meetings": len(data.queries),
        "load_rows": data.rows,
        "load_pages": len(data.items),
    }
    # The prepared pages (GBs of objects at full size) stay out of the collector's
    # walks: they are the input, not what a loader holds.
    gc.collect()
    gc.freeze()
    try:
        _loading(res, cfg, data)
    finally:
        del data
        gc.unfreeze()
        gc.collect()
    _whole_export(res, cfg)
    return res


# --- loading -----------------------------------------------------------------------------


async def _load_rounds(data: Prepared, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Seconds, client CPU and PostgreSQL CPU ("seconds", "client", "server") of each
    loader in each round, after a warm-up round on a tenth of the pages; the conversion
    alone's seconds as a loader named "convert"."""
    runs: dict[str, dict[str, list[float]]] = {
        fig: {name: [] for name in ("convert", "convert_integer_times", *LOADERS)}
        for fig in ("seconds", "client", "server")
    }
    admin = await connect()
    try:
        for r in range(rounds + 1):
            pages = subset(data, 0.1) if r == 0 else data
            convert_s = convert_all(pages)
            convert_integer_s = convert_all(pages, integer_times=True)
            for name, load in LOADERS.items():
                async with fresh_schema(admin) as schema:
                    client, server = time.process_time(), postgres_cpu()
                    took = await load(pages, schema)
                    client = time.process_time() - client
                    await asyncio.sleep(REAPED)
                    server = postgres_cpu() - server
                    rows = await count_rows(admin, schema)
                if rows != pages.rows:
                    raise RuntimeError(f"{name} loaded {rows} rows of {pages.rows}")
                if r > 0:
                    for fig, value in (("seconds", took), ("client", client), ("server", server)):
                        runs[fig][name].append(value)
            if r > 0:
                runs["seconds"]["convert"].append(convert_s)
                runs["seconds"]["convert_integer_times"].append(convert_integer_s)
    finally:
        await admin.close()
    return runs


def _loading(res: BenchResult, cfg: Config, data: Prepared) -> None:
    rounds = cfg.pick(3, 1)
    runs = asyncio.run(_load_rounds(data, rounds))
    seconds, client, server = runs["seconds"], runs["client"], runs["server"]
    res.params["load_rounds"] = rounds
    n = f"{data.rows:,}"
    res.add(
        "load.convert.rows_per_s",
        f"Conversion alone (participant_records, no database), {n} rows",
        Stat.of([data.rows / s for s in seconds["convert"]], "rows/s"),
        better="higher",
    )
    res.add(
        "load.convert_integer_times.rows_per_s",
        f"Conversion alone, the timestamps as our store sends them, {n} rows",
        Stat.of([data.rows / s for s in seconds["convert_integer_times"]], "rows/s"),
        better="higher",
    )
    for name, label in _LABELS.items():
        res.add(
            f"load.{name}.rows_per_s",
            f"Load {n} rows into PostgreSQL: {label}",
            Stat.of([data.rows / s for s in seconds[name]], "rows/s"),
            better="higher",
        )
        res.add(f"load.{name}.seconds", f"Load, {name}: time", Stat.of(seconds[name], "s"))
        res.add(
            f"load.{name}.client_cpu_s",
            f"Load, {name}: client CPU (this process)",
            Stat.of(client[name], "CPU s"),
        )
        if all(math.isfinite(c) for c in server[name]):
            res.add(
                f"load.{name}.server_cpu_s",
                f"Load, {name}: PostgreSQL CPU",
                Stat.of(server[name], "CPU s"),
            )
    res.ratio(
        "load_vs_executemany",
        f"Load {n} rows into PostgreSQL: ours vs the executemany loader",
        "load.ours.rows_per_s",
        "load.executemany.rows_per_s",
        goal=EXECUTEMANY_GOAL,
        goal_text=f">= {EXECUTEMANY_GOAL:g}x the executemany loader",
        headline=True,
    )
    res.ratio(
        "load_vs_copy",
        f"Load {n} rows into PostgreSQL: ours vs a bare COPY",
        "load.ours.rows_per_s",
        "load.copy.rows_per_s",
        goal=COPY_GOAL,
        goal_text=f">= {COPY_GOAL:g}x the bare COPY",
        headline=True,
    )
    res.ratio(
        "load_vs_copy_integer_times",
        f"Load {n} rows into PostgreSQL: ours vs a bare COPY with our integer timestamps",
        "load.ours.rows_per_s",
        "load.copy_integer_times.rows_per_s",
        goal_text="informative: the loading alone, the timestamps' encoding the same",
    )
    convert = statistics.median(seconds["convert"])
    convert_integer = statistics.median(seconds["convert_integer_times"])
    without = {
        name: data.rows
        / max(
            1e-9,
            statistics.median(seconds[name])
            - (convert_integer if name in ("ours", "copy_integer_times") else convert),
        )
        for name in LOADERS
    }
    res.notes.append(
        f"Every loader's time includes the conversion ({convert:.2f} s alone, median; "
        f"{convert_integer:.2f} s with the timestamps as our store sends them, for ours and "
        "the COPY with integer timestamps). Without it (that median subtracted from each "
        "loader's): "
        + ", ".join(f"{name} {rate:,.0f} rows/s" for name, rate in without.items())
        + f"; ours {without['ours'] / without['executemany']:.2f}x the executemany loader, "
        f"{without['ours'] / without['copy']:.2f}x the bare COPY (derived from the medians, "
        "not measured apart)."
    )


# --- the whole export --------------------------------------------------------------------


def _whole_export(res: BenchResult, cfg: Config) -> None:
    target = cfg.pick(EXPORT_TARGET, QUICK_EXPORT_TARGET)
    rounds = cfg.pick(3, 1)
    runs: dict[str, list[WayRun]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as tmp:
        # A tenth of the rows first, once: what the peak RSS is flat against.
        tenth = {way: export_once(way, target // 10, Path(tmp)) for way in WAYS}
        for _ in range(rounds):
            for way in WAYS:
                runs[way].append(export_once(way, target, Path(tmp)))
    rows = runs["jsonl"][0].rows
    res.params |= {"export_rows": rows, "export_rounds": rounds}
    for way, done in runs.items():
        _export_figures(res, way, done, rows)
        res.add(
            f"export.{way}.peak_rss_mb_tenth",
            f"Export of {tenth[way].rows:,} rows (a tenth) into {way}: exporter peak RSS",
            Stat.of([tenth[way].run.peak_rss_mb], "MB"),
        )
    _export_checks(res, rows, full=not cfg.quick)


def _export_figures(res: BenchResult, way: str, done: list[WayRun], rows: int) -> None:
    runs = [d.run for d in done]
    res.add(
        f"export.{way}.seconds",
        f"Export {rows:,} rows into {way}: wall time",
        Stat.of([r.seconds for r in runs], "s"),
    )
    res.add(
        f"export.{way}.rows_per_s",
        f"Export into {way}: rows per second (wall)",
        Stat.of([rows / r.seconds for r in runs], "rows/s"),
        better="higher",
    )
    res.add(
        f"export.{way}.exporter_cpu_s",
        f"Export into {way}: exporter CPU",
        Stat.of([r.exporter_cpu_s for r in runs], "CPU s"),
    )
    res.add(
        f"export.{way}.emulator_cpu_s",
        f"Export into {way}: emulator CPU over the same export",
        Stat.of([r.emulator_cpu_s for r in runs], "CPU s"),
    )
    if all(math.isfinite(d.server_cpu_s) for d in done):
        res.add(
            f"export.{way}.server_cpu_s",
            f"Export into {way}: PostgreSQL CPU over the same export",
            Stat.of([d.server_cpu_s for d in done], "CPU s"),
        )
    res.add(
        f"export.{way}.peak_rss_mb",
        f"Export into {way}: exporter peak RSS",
        Stat.of([r.peak_rss_mb for r in runs], "MB"),
    )


def _export_checks(res: BenchResult, rows: int, full: bool) -> None:
    ratio = res.ratio(
        "export_pg_vs_jsonl",
        f"Whole export of {rows:,} rows into PostgreSQL: the JSONL export's time / ours",
        "export.postgres.seconds",
        "export.jsonl.seconds",
        goal=1 / EXPORT_GOAL,
        goal_text=f"within {EXPORT_GOAL:g}x the JSONL export's time (>= {1 / EXPORT_GOAL:.2f})",
        headline=True,
    )
    med = {
        (way, fig): res.figure(f"export.{way}.{fig}").stat.median
        for way in WAYS
        for fig in ("seconds", "peak_rss_mb", "peak_rss_mb_tenth", "rows_per_s")
    }
    growth = {way: med[way, "peak_rss_mb"] / med[way, "peak_rss_mb_tenth"] - 1 for way in WAYS}
    res.checks.append(
        Check(
            "export_pg_rss",
            f"Whole export of {rows:,} rows: peak RSS, PostgreSQL vs JSONL",
            f"PostgreSQL {med['postgres', 'peak_rss_mb']:.1f} MB ({growth['postgres']:+.1%} "
            f"over a tenth of the rows), JSONL {med['jsonl', 'peak_rss_mb']:.1f} MB "
            f"({growth['jsonl']:+.1%}); times {med['postgres', 'seconds']:.1f} s vs "
            f"{med['jsonl', 'seconds']:.1f} s ({1 / ratio.value:.2f}x)",
            f"flat as the JSONL export's: within {RSS_FLAT - 1:.0%} of a tenth of the rows'"
            + ("" if full else " (judged at full size only)"),
            growth["postgres"] <= RSS_FLAT - 1 if full else None,
            headline=True,
        )
    )
    cpu = {
        (way, fig): res.figure(f"export.{way}.{fig}").stat.median
        for way in ("jsonl", "postgres")
        for fig in ("exporter_cpu_s", "emulator_cpu_s")
    }
    server = next(
        (f.stat.median for f in res.figures if f.key == "export.postgres.server_cpu_s"), None
    )
    res.notes.append(
        f"Whole export: the exporter's CPU is {cpu['postgres', 'exporter_cpu_s']:.1f} s into "
        f"PostgreSQL against {cpu['jsonl', 'exporter_cpu_s']:.1f} s into JSONL (a row is "
        "converted to typed values, then encoded by asyncpg for the binary COPY, where JSONL "
        "encodes it once); the emulator's is "
        f"{cpu['postgres', 'emulator_cpu_s']:.1f} s"
        + (f" and PostgreSQL's {server:.1f} s" if server is not None else "")
        + ", on the same 2 cores."
    )
    res.checks.append(
        Check(
            "export_sqlite",
            f"Whole export of {rows:,} rows into SQLite",
            f"{med['sqlite', 'rows_per_s']:,.0f} rows/s ({med['sqlite', 'seconds']:.1f} s; "
            f"PostgreSQL {med['postgres', 'rows_per_s']:,.0f}, JSONL "
            f"{med['jsonl', 'rows_per_s']:,.0f}), peak RSS {med['sqlite', 'peak_rss_mb']:.1f} MB",
            "informative",
            None,
            headline=True,
        )
    )
