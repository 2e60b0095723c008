"""Attendance kept current in a database, from Python, and two questions asked of it.

``Sync(client, SyncJob(database_output(url, name="sync")))`` is what ``feishu-vc sync``
runs: the first cycle backfills the meetings that ended in the last 30 days, each later
cycle (``run()`` without ``once``: every 5 minutes) takes the meetings that ended since;
each meeting's rows land in one transaction with its mark, so a crash loses nothing and
repeats nothing. Then the SQL in ``examples/sql/`` reads the tables.

Against Feishu::

    FEISHU_APP_ID=cli_... FEISHU_APP_SECRET=... \\
        python examples/attendance_database.py --db sqlite:///attendance.db

Without credentials it syncs the embedded emulator's meetings into ``--db`` (a SQLite
file in a temporary directory by default) and checks the tables against its data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from feishu_vc_async import FEISHU_BASE_URL, AppCredentials, Limits, RateLimit, VCClient
from feishu_vc_async.export import database_output
from feishu_vc_async.sync import Cycle, Sync, SyncJob

SQL = Path(__file__).resolve().parent / "sql"


def questions(url: str) -> dict[str, str]:
    """The example queries, in the database's dialect."""
    dialect = "postgres" if url.startswith("postgres") else "sqlite"
    return {
        "attendance per person per week": (SQL / f"attendance_per_week.{dialect}.sql").read_text(),
        "meetings with the most external participants": (SQL / "most_external.sql").read_text(),
    }


async def ask(url: str, sql: str, *, schema: str | None = None) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` in the database at ``url``."""
    if url.startswith("postgres"):
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            if schema:
                await conn.execute(f'SET search_path TO "{schema}"')
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def sync_once(
    client: VCClient, url: str, *, schema: str | None = None, since_days: int = 30
) -> Cycle:
    """Catch the database at ``url`` up with the meetings that ended since ``since_days``
    ago (the first run) or since the last run."""
    output = database_output(url, schema=schema, name="sync")
    cycle = await Sync(client, SyncJob(output, since=since_days * 86_400)).run(once=True)
    print(f"{cycle.new} new meetings, {cycle.rows} participants → {output.where}")
    return cycle


async def show(url: str, *, schema: str | None = None) -> None:
    for title, sql in questions(url).items():
        rows = await ask(url, sql, schema=schema)
        print(f"{title}: {len(rows)} rows")
        for row in rows[:3]:
            print("  " + " | ".join(str(v) for v in row))


async def self_check(url: str, schema: str | None) -> int:
    from feishu_vc_async.emulator import Emulator

    async with Emulator(meetings=60, seed=7, rate_limit=None) as emu:
        scaled = RateLimit(100, 1.0)  # the platform's minute as a second: the emulator's data
        limits = Limits(participant_list=scaled, meeting_list=scaled)
        credentials = AppCredentials(emu.app_id, emu.app_secret)
        async with VCClient(credentials, base_url=emu.base_url, limits=limits) as c:
            cycle = await sync_once(c, url, schema=schema)
        listed = [m.query() for m in emu.listed_meetings(cycle.listed_from, cycle.listed_to)]
        taken = [q for q in listed if q.meeting_end_time >= cycle.state.floor]
        truth = sorted(
            (q.meeting_no, q.meeting_start_time, len(emu.participants(q))) for q in taken
        )
    await show(url, schema=schema)
    table = "feishu_vc_meetings" if not schema else f'"{schema}".feishu_vc_meetings'
    got = await ask(url, f"SELECT meeting_no, meeting_start_time, participant_rows FROM {table}")
    ok = sorted(got) == truth and cycle.caught_up
    print("tables match the emulator's data" if ok else "MISMATCH with the emulator's data")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="postgresql://... or sqlite:///path (default: a temp file)")
    parser.add_argument("--db-schema", help="PostgreSQL: the schema of the tables")
    args = parser.parse_args()
    app_id, secret = os.environ.get("FEISHU_APP_ID"), os.environ.get("FEISHU_APP_SECRET")
    if not (app_id and secret):
        with tempfile.TemporaryDirectory() as tmp:
            url = args.db or f"sqlite:///{Path(tmp) / 'attendance.db'}"
            return asyncio.run(self_check(url, args.db_schema))
    if not args.db:
        parser.error("--db is required with credentials")

    async def run() -> None:
        base_url = os.environ.get("FEISHU_BASE_URL", FEISHU_BASE_URL)
        async with VCClient(AppCredentials(app_id, secret), base_url=base_url) as client:
            await sync_once(client, args.db, schema=args.db_schema)
        await show(args.db, schema=args.db_schema)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
