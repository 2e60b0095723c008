"""The demo's second part: a database kept current (``feishu-vc sync``) as meetings end.

A second emulator holds a month of meetings and two that are still going on; they end a
few seconds in. The sync backfills the month into ``demo-output/attendance.db``
(SQLite), then follows: a cycle every two seconds, until both meetings that ended while
it ran are in the tables; the tables are then checked against the emulator's data.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from ..auth import AppCredentials
from ..client import VCClient
from ..export import database_output
from ..ratelimit import Limits, RateLimit
from ..sync import Cycle, Sync, SyncJob
from .sync import cycle_line

__all__ = ["held_meetings", "sync_demo"]

_DAY = 86_400
_INTERVAL = 2.0
_ENDING_EVERY = 5.0
# Bounds the follow only if something is broken: the meetings end within seconds.
_PATIENCE = 120.0


def held_meetings(db: Path) -> set[tuple[str, int, int]]:
    """(number, start, rows) of every meeting in the tables."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT meeting_no, meeting_start_time, participant_rows FROM feishu_vc_meetings"
        ).fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


async def sync_demo(out_dir: Path, rate: RateLimit, seed: int) -> list[str]:
    """Run the part; returns the problems the check found (none: it passed)."""
    from ..emulator import Emulator, MeetingsEnding

    db = out_dir / "attendance.db"
    for stale in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", ".lock"))):
        stale.unlink(missing_ok=True)
    print(
        "\nPart 2: a database kept current, `feishu-vc sync --db sqlite:///"
        f"{db} --since 32d --interval 2s`\n  (the emulator again: a month of meetings, "
        f"and two going on now that end {_ENDING_EVERY:.0f} s apart)",
        flush=True,
    )
    ending = MeetingsEnding(count=2, every=_ENDING_EVERY)
    async with Emulator(
        meetings=60, seed=seed, rate_limit=rate, meeting_list_rate_limit=rate, ending=ending
    ) as emu:
        url = f"sqlite:///{db}"
        job = SyncJob(database_output(url, name="sync"), since=32 * _DAY, interval=_INTERVAL)
        last = {(q.meeting_no, q.meeting_start_time) for q in emu.ending}
        caught = asyncio.Event()
        floor = 0

        def said(cycle: Cycle) -> None:
            nonlocal floor
            floor = cycle.state.floor
            print("  " + cycle_line(cycle, where=url, interval=_INTERVAL), flush=True)
            if last <= {(n, s) for n, s, _ in held_meetings(db)}:
                caught.set()

        limits = Limits(participant_list=rate, meeting_list=rate)
        credentials = AppCredentials(emu.app_id, emu.app_secret)
        started = time.monotonic()
        async with VCClient(credentials, base_url=emu.base_url, limits=limits) as client:
            following = asyncio.create_task(Sync(client, job, on_cycle=said).run())
            try:
                async with asyncio.timeout(_PATIENCE):
                    await caught.wait()
            except TimeoutError:
                pass
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        listed = [q.query() for q in emu.listed_meetings(floor - 2 * _DAY, int(time.time()))]
        truth = {
            (q.meeting_no, q.meeting_start_time, len(emu.participants(q)))
            for q in listed
            if q.meeting_end_time >= floor
        }
    return _report(db, truth, caught.is_set(), time.monotonic() - started)


def _report(db: Path, truth: set[tuple[str, int, int]], caught: bool, took: float) -> list[str]:
    held = held_meetings(db)
    problems = []
    if not caught:
        problems.append("the meetings that ended while it followed never reached the tables")
    if held != truth:
        problems.append(
            f"{len(truth - held)} meetings missing or short, {len(held - truth)} not in the data"
        )
    rows = sum(n for _, _, n in held)
    if not problems:
        print(
            f"  Ground-truth check passed: {len(held)} meetings, {rows} participants in "
            f"{db.name}, each exactly once; the two that ended while it ran were taken "
            f"as they ended ({took:.0f} s in all).\n  Ask it: sqlite3 {db} "
            "'SELECT meeting_topic, participant_rows FROM feishu_vc_meetings "
            "ORDER BY ended_at DESC LIMIT 3'"
        )
    return problems
