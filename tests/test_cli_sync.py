"""``feishu-vc sync --db URL`` as users run it: ``--once`` catches up and a second run
asks only the listing; a follower takes the meetings that end while it runs and stops
on SIGTERM with 143; two syncs at once: one is refused, no row doubled; ``kill -9`` at
events drawn from the run's seed, then ``--once`` again: the tables equal the ground
truth in PostgreSQL and SQLite."""

from __future__ import annotations

import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from msgspec.structs import astuple

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData, MeetingsEnding
from feishu_vc_async.sync import SyncState
from tests._cli import app_env, run_cli
from tests._databases import TestDatabase
from tests._kill_runs import Kill, draw_kill, run_until
from tests._seed import replay_hint

pytestmark = pytest.mark.anyio

DAY = 86_400
SINCE_DAYS = 40


def _db_args(database: TestDatabase) -> list[str]:
    schema = ["--db-schema", database.schema] if database.schema else []
    return ["--db", database.url, *schema]


def _sync_argv(emu: Emulator, database: TestDatabase, *extra: str) -> list[str]:
    fast = ["--rate-limit", "1000/1s", "--meeting-list-rate-limit", "1000/1s"]
    since = ["--since", f"{SINCE_DAYS}d"]
    return ["sync", *_db_args(database), *since, "--base-url", emu.base_url, *fast, *extra]


def _truth(emu: Emulator, floor: int, **flags: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The participants of every meeting listed as ended that ended since ``floor``."""
    truth = {}
    for meeting in emu.listed_meetings(floor - 2 * DAY, int(time.time()), **flags):
        query = meeting.query()
        rows = [astuple(p) for p in emu.participants(query)]
        if query.meeting_end_time >= floor and rows:
            truth[f"{query.meeting_no}@{query.meeting_start_time}"] = rows
    return truth


async def _floor(database: TestDatabase) -> int:
    """The sync's floor, as it keeps it in the database."""
    rows = await database.fetch(
        f"SELECT state FROM {database.table('feishu_vc_progress')} WHERE name = 'sync.state'"
    )
    return msgspec.msgpack.decode(rows[0][0], type=SyncState).floor


async def test_once_catches_up_and_a_second_run_asks_only_the_listing(
    database: TestDatabase,
) -> None:
    async with Emulator(meetings=40, seed=61, rate_limit=None) as emu:
        code, out, err = await run_cli(_sync_argv(emu, database, "--once"), app_env(emu))
        assert code == 0, err
        assert "sync cycle 1:" in out
        truth = _truth(emu, await _floor(database))
        assert len(truth) > 20
        assert await database.participants() == truth
        emu.reset_log()
        code, out, err = await run_cli(_sync_argv(emu, database, "--once"), app_env(emu))
        assert code == 0, err
        assert " 0 new, 0 participants" in out
        assert not [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
    assert await database.participants() == truth


def _subprocess(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "feishu_vc_async", *argv]


def _env(emu: Emulator) -> dict[str, str]:
    return {**app_env(emu), "PATH": "/usr/bin"}


async def test_a_follower_takes_meetings_as_they_end_and_stops_on_sigterm(
    database: TestDatabase, tmp_path: Path
) -> None:
    """The emulator's meetings end a second apart on the real clock; the follower's
    cycles (every second) take each after its end; the test waits for the rows, not for
    a number of seconds."""
    ending = MeetingsEnding(count=2, every=1.0)
    async with Emulator(meetings=10, seed=62, rate_limit=None, ending=ending) as emu:
        argv = _subprocess(_sync_argv(emu, database, "--interval", "1s", "--progress", "none"))
        log = tmp_path / "follow.log"
        last = emu.ending[-1]
        key = f"{last.meeting_no}@{last.meeting_start_time}"

        async def taken() -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return key in await database.participants()

            return check

        async def polled(_kill: Kill) -> Callable[[], Awaitable[bool]]:
            return await taken()

        code = await run_until(
            argv, _env(emu), log, emu, Kill("taken"), sig=signal.SIGTERM, polled=polled
        )
        said = log.read_text()
        truth = _truth(emu, await _floor(database))
    assert code == 143, said
    assert "terminated" in said
    assert "sync cycle 2:" in said  # the backfill, then the cycles that followed
    assert all(f"{q.meeting_no}@{q.meeting_start_time}" in truth for q in emu.ending)
    assert await database.participants() == truth


async def test_two_syncs_at_once_one_is_refused_and_no_row_is_doubled(
    database: TestDatabase, tmp_path: Path
) -> None:
    data = MeetingData(webinar_size=300)
    async with Emulator(meetings=60, seed=63, rate_limit=None, latency=0.02, data=data) as emu:
        argv = _subprocess(_sync_argv(emu, database, "--once", "--progress", "none"))
        codes: list[int] = []

        async def one(n: int) -> None:
            codes.append(await run_until(argv, _env(emu), tmp_path / f"sync{n}.log", emu))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(one, 1)
            tasks.start_soon(one, 2)
        logs = [(tmp_path / f"sync{n}.log").read_text() for n in (1, 2)]
        truth = _truth(emu, await _floor(database))
    # The second is refused naming the first (SQLite at once; PostgreSQL after waiting
    # lock_wait), or, having waited for the first to finish, finds nothing new.
    assert sorted(codes) in ([0, 2], [0, 0]), logs
    if 2 in codes:
        assert any("is being written by" in log and "pid" in log for log in logs), logs
    else:
        assert any(" 0 new, 0 participants" in log for log in logs), logs
    assert await database.participants() == truth


KILLS = 10


@pytest.mark.slow
async def test_killed_syncs_rerun_to_exactly_the_ground_truth(
    database: TestDatabase, tmp_path: Path, rng: random.Random
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    data = MeetingData(webinar_size=200)
    async with Emulator(
        meetings=450,
        seed=64,
        rate_limit=None,
        meeting_list_rate_limit=None,
        latency=0.01,
        data=data,
    ) as emu:
        argv = _subprocess(
            _sync_argv(
                emu,
                database,
                "--once",
                "--include-webinars",
                "--meeting-list-rate-limit",
                "3/1s",
                "--concurrency",
                "3",
                "--page-size",
                "20",
                "--progress",
                "none",
            )
        )
        plan: list[Kill] = []
        codes: list[int] = []

        async def polled(kill: Kill) -> Callable[[], Awaitable[bool]]:
            before = await database.progress_stamp()

            async def committed() -> bool:
                return await database.progress_stamp() != before

            return committed

        for n in range(KILLS):
            state = await database.state(name="sync")
            finding = state is None or not (state.discovery and state.discovery.position.done)
            kinds = ("answer", "commit") + ("listing",) * finding
            kill = draw_kill(rng, kinds, 2 if finding else 12)
            plan.append(kill)
            log = logs / f"kill{n}.log"
            codes.append(await run_until(argv, _env(emu), log, emu, kill, polled=polled))
        final = await run_until(argv, _env(emu), logs / "final.log", emu)
        assert final == 0, (logs / "final.log").read_text()
        truth = _truth(emu, await _floor(database), include_webinar=True)
    context = f"kills {[str(k) for k in plan]} gave {codes}; replay: {replay_hint()}"
    assert codes == [-signal.SIGKILL] * KILLS, context
    got = await database.participants()
    assert sum(map(len, truth.values())) > 3000
    assert got == truth, (
        f"meetings missing {len(truth.keys() - got.keys())}, extra "
        f"{len(got.keys() - truth.keys())}; {context}"
    )


async def test_an_unusable_database_or_option_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    async with Emulator(meetings=5, seed=65, rate_limit=None) as emu:
        cases = [
            (["--db", "postgresql://postgres@127.0.0.1:1/test"], "cannot be reached"),
            (["--db", str(tmp_path / "plain.db")], "expected postgresql://... or sqlite:///"),
            (["--db", f"sqlite:///{tmp_path}/s.db", "--interval", "0s"], "--interval '0s'"),
            (["--db", f"sqlite:///{tmp_path}/s.db", "--since", "soon"], "--since 'soon'"),
            (["--db", f"sqlite:///{tmp_path}/s.db", "--page-size", "5"], "--page-size 5"),
        ]
        for db, message in cases:
            argv = ["sync", *db, "--once", "--base-url", emu.base_url]
            code, _, err = await run_cli(argv, app_env(emu))
            assert code == 2, err
            assert message in err, err
        assert emu.requests == []
