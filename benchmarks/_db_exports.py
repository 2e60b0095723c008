"""The whole export of ``bench_database``: one export through the library's API
(``benchmarks/_export_child.py``) into JSONL, PostgreSQL or SQLite, in a process of its
own against a fresh emulator, measured as ``bench_export`` measures its exports
(``_export_runs``), its rows counted and its output removed after."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from ._db_loaders import POSTGRES_URL, connect, count_rows, postgres_cpu
from ._export_runs import (
    WEBINAR_SIZE,
    ExporterRun,
    run_exporter,
    webinar_emulator,
    write_meetings,
)

__all__ = ["WAYS", "WayRun", "export_once"]

WAYS = ("jsonl", "postgres", "sqlite")


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _count_sqlite(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM feishu_vc_participants").fetchone()[0])
    finally:
        db.close()


async def _postgres_schema(schema: str, *, drop: bool) -> int:
    """Before an export: a checkpoint (no export pays for another's WAL). After: its
    rows, then the schema dropped."""
    admin = await connect()
    try:
        if not drop:
            await admin.execute("CHECKPOINT")
            return 0
        try:
            return await count_rows(admin, schema)
        finally:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await admin.close()


@dataclass(frozen=True)
class WayRun:
    rows: int
    run: ExporterRun
    server_cpu_s: float  # PostgreSQL's CPU over the export (NaN: not measured)


def export_once(way: str, target: int, tmp: Path) -> WayRun:
    """One export of ``target`` rows (webinars of the emulator) into ``way``, by the
    library's API in a process of its own, against a fresh emulator; the rows written."""
    webinars = -(-target // WEBINAR_SIZE)
    meetings_file = tmp / "meetings.jsonl"
    schema = f"bench_export_{uuid.uuid4().hex[:12]}"
    out = {
        "jsonl": tmp / "out.jsonl",
        "postgres": POSTGRES_URL,
        "sqlite": f"sqlite:///{tmp / 'out.db'}",
    }[way]
    with webinar_emulator(webinars) as emu:
        write_meetings(meetings_file, emu.meetings[:webinars])
        args = ["benchmarks._export_child", "--meetings", str(meetings_file), "--out", str(out)]
        args += ["--base-url", emu.base_url]
        if way == "postgres":
            args += ["--schema", schema]
            asyncio.run(_postgres_schema(schema, drop=False))
        server_cpu = postgres_cpu()
        try:
            run = run_exporter(emu, args, tmp / "usage.json", f"export into {way}")
            server_cpu = postgres_cpu() - server_cpu
        finally:
            rows = _collect(way, tmp, schema)
    if rows != webinars * WEBINAR_SIZE:
        raise RuntimeError(f"export into {way} wrote {rows} rows of {webinars * WEBINAR_SIZE}")
    return WayRun(rows, run, server_cpu if way == "postgres" else float("nan"))


def _collect(way: str, tmp: Path, schema: str) -> int:
    """The rows the export wrote; the output removed."""
    if way == "postgres":
        return asyncio.run(_postgres_schema(schema, drop=True))
    if way == "jsonl":
        path = tmp / "out.jsonl"
        rows = _count_lines(path) if path.exists() else 0
    else:
        path = tmp / "out.db"
        rows = _count_sqlite(path) if path.exists() else 0
    for leftover in tmp.glob("out.*"):
        leftover.unlink()
    return rows
