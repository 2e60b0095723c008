"""The demo's third part: meetings taken seconds after they end, told by events.

A third emulator holds a month of meetings and three going on that end a few seconds
apart; it tells each end over its long connection (``all_meeting_ended_v1``). The sync
(``feishu-vc sync --events``, here through the library: :class:`~..sync.EventSync` fed
by a :class:`~..events.LongConnection`) backfills the month into
``demo-output/attendance-events.db`` (SQLite), then takes each meeting as its event
comes; the demo prints how long after each end its rows were committed, and checks them
against the emulator's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from ..auth import AppCredentials
from ..client import VCClient
from ..events import LongConnection
from ..export import database_output
from ..ratelimit import Limits, RateLimit
from ..sync import Cycle, EventSync, Following, SyncJob, Taken, open_inbox
from ._demo_sync import held_meetings
from ._events import taken_line
from .sync import cycle_line

__all__ = ["events_demo"]

_DAY = 86_400
_ENDING_EVERY = 3.0
_SETTLE = 1.0
_PATIENCE = 120.0  # bounds the wait only if something is broken


async def events_demo(out_dir: Path, rate: RateLimit, seed: int) -> list[str]:
    """Run the part; returns the problems the check found (none: it passed)."""
    from ..emulator import Emulator, MeetingsEnding

    db = out_dir / "attendance-events.db"
    for stale in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", ".lock"))):
        stale.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    print(
        f"\nPart 3: seconds after each meeting ends, `feishu-vc sync --db {url} --events`\n"
        f"  (the emulator tells each end over its long connection; three meetings going on "
        f"now end {_ENDING_EVERY:.0f} s apart)",
        flush=True,
    )
    ending = MeetingsEnding(count=3, every=_ENDING_EVERY)
    async with Emulator(
        meetings=40, seed=seed + 1, rate_limit=rate, meeting_list_rate_limit=rate, ending=ending
    ) as emu:
        ends = {(q.meeting_no, q.meeting_start_time): q.meeting_end_time for q in emu.ending}
        committed: dict[tuple[str, int], float] = {}
        done = asyncio.Event()

        def said_cycle(cycle: Cycle) -> None:
            print("  " + cycle_line(cycle, where=url, interval=None), flush=True)

        def said_taken(taken: Taken) -> None:
            now = time.time()
            print("  " + taken_line(taken, where=url), flush=True)
            for number, start, _ in held_meetings(db):
                key = (number, start)
                if key in ends and key not in committed:
                    committed[key] = now
                    print(
                        f"    meeting {number} ended {now - ends[key]:.1f} s ago: "
                        "its rows are in the database",
                        flush=True,
                    )
            if len(committed) == len(ends):
                done.set()

        limits = Limits(participant_list=rate, meeting_list=rate)
        credentials = AppCredentials(emu.app_id, emu.app_secret)
        job = SyncJob(database_output(url, name="sync"), since=32 * _DAY)
        async with (
            VCClient(credentials, base_url=emu.base_url, limits=limits) as client,
            open_inbox(url) as inbox,
        ):
            sync = EventSync(
                client,
                job,
                inbox,
                Following(settle=_SETTLE),
                on_cycle=said_cycle,
                on_taken=said_taken,
            )
            connection = LongConnection(
                base_url=emu.base_url,
                app_id=emu.app_id,
                app_secret=emu.app_secret,
                on_ended=sync.put,
            )
            tasks = [asyncio.create_task(sync.run()), asyncio.create_task(connection.run())]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_PATIENCE):
                    await done.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        truth = {(q.meeting_no, q.meeting_start_time, len(emu.participants(q))) for q in emu.ending}
    return _report(db, truth, committed, ends)


def _report(
    db: Path,
    truth: set[tuple[str, int, int]],
    committed: dict[tuple[str, int], float],
    ends: dict[tuple[str, int], int],
) -> list[str]:
    held = held_meetings(db)
    problems = []
    if len(committed) < len(ends):
        problems.append(
            f"{len(ends) - len(committed)} meetings told ended never reached the tables"
        )
    if not truth <= held:
        problems.append(f"{len(truth - held)} meetings told ended are missing or short")
    if not problems:
        lags = sorted(committed[k] - ends[k] for k in committed)
        spread = f"{lags[-1]:.1f}"
        if f"{lags[0]:.1f}" != spread:
            spread = f"{lags[0]:.1f} to {spread}"
        print(
            f"  Ground-truth check passed: the {len(truth)} meetings that ended were in "
            f"{db.name} {spread} s after their ends, each exactly "
            f"once (a {_SETTLE:.0f} s settle, then one fetch each)."
        )
    return problems
