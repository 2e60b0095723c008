"""The whole export of ``bench_database``: one export through the library's API
(``benchmarks/_export_child.py``) into JSONL, PostgreSQL or SQLite, in a process of its
own against a fresh emulator, measured as ``bench_export`` measures its exports
(``_export_runs``), its rows counted and its output removed after."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from feishu_vc_async.export._db_tables import PARTICIPANTS

from ._db_loaders import POSTGRES_URL, REAPED, connect, postgres_cpu
from ._export_runs import (
    WEBINAR_SIZE,
    ExporterRun,
    run_exporter,
    webinar_emulator,
    write_meetings,
)

__all__ = ["WAYS", "WayRun", "export_once"]


@dataclass(frozen=True)
class WayRun:
    rows: int
    run: ExporterRun
    server_cpu_s: float  # PostgreSQL's CPU over the export (NaN: not measured)


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _sqlite_rows(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM feishu_vc_participants").fetchone()[0])
    finally:
        db.close()


async def _postgres(sql: str) -> int:
    """Run ``sql`` on the benchmark's PostgreSQL; its value, if it has one."""
    admin = await connect()
    try:
        return int(await admin.fetchval(sql) or 0)
    finally:
        await admin.close()


@dataclass(frozen=True)
class _Way:
    """Where one way exports to, and how its rows are counted."""

    out: Callable[[Path], str]  # the export's output, in a temporary directory
    rows: Callable[[Path], int] | None  # the rows of that file (None: PostgreSQL's schema)


_WAYS = {
    "jsonl": _Way(lambda tmp: str(tmp / "out.jsonl"), lambda tmp: _lines(tmp / "out.jsonl")),
    "postgres": _Way(lambda tmp: POSTGRES_URL, None),
    "sqlite": _Way(
        lambda tmp: f"sqlite:///{tmp / 'out.db'}", lambda tmp: _sqlite_rows(tmp / "out.db")
    ),
}
WAYS = tuple(_WAYS)


def export_once(name: str, target: int, tmp: Path) -> WayRun:
    """One export of ``target`` rows (webinars of the emulator) into ``name`` (one of
    :data:`WAYS`) by the library's API in a process of its own, against a fresh
    emulator: measured, its rows checked, its output removed."""
    way = _WAYS[name]
    webinars = -(-target // WEBINAR_SIZE)
    meetings_file = tmp / "meetings.jsonl"
    args = ["benchmarks._export_child", "--meetings", str(meetings_file), "--out", way.out(tmp)]
    schema = f"bench_export_{uuid.uuid4().hex[:12]}"
    if way.rows is None:
        args += ["--schema", schema]
        asyncio.run(_postgres("CHECKPOINT"))  # no export pays for the WAL another wrote
    try:
        with webinar_emulator(webinars) as emu:
            write_meetings(meetings_file, emu.meetings[:webinars])
            server_cpu = postgres_cpu() if way.rows is None else math.nan
            usage = tmp / "usage.json"
            run = run_exporter(emu, [*args, "--base-url", emu.base_url], usage, f"export to {name}")
            if way.rows is None:
                time.sleep(REAPED)
                server_cpu = postgres_cpu() - server_cpu
        if way.rows is None:
            rows = asyncio.run(_postgres(f'SELECT count(*) FROM "{schema}".{PARTICIPANTS.name}'))
        else:
            rows = way.rows(tmp)
    finally:
        if way.rows is None:
            asyncio.run(_postgres(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        for leftover in tmp.glob("out.*"):
            leftover.unlink()
    if rows != webinars * WEBINAR_SIZE:
        raise RuntimeError(f"export to {name} wrote {rows} rows of {webinars * WEBINAR_SIZE}")
    return WayRun(rows, run, server_cpu)
