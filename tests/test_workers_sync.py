"""``feishu-vc sync --broker``: each cycle's window is queued for the workers (in this
process, against the emulator, a real Redis stream and a real PostgreSQL) and watched
to its end: ``--once`` fills the tables equal to the ground truth, each participant
once; a second ``--once`` lists from the kept watermark and queues no fetch; a meeting
refused for good is exit 1, named, the watermark left in place; Ctrl-C is 130 and the
workers go on; a store app's tenant is the one queued; bad options are exit 2 before
anything is queued. Every wait is on something observable (the command's end, the
stream, the tables), under a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
import redis.asyncio as aioredis

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.cli.worker import worker_settings
from feishu_vc_async.emulator import Emulator
from feishu_vc_async.sync import SyncState
from feishu_vc_async.workers import DISCOVER_TASK, WorkerTasks, make_broker, run_worker
from tests._cli import run_cli
from tests._databases import TestDatabase
from tests._kill_runs import Kill, run_until
from tests._workers import DEADLINE, _env, _listed, _marked, _truth, pg, redis14

__all__ = ["pg", "redis14"]  # the fixtures, used by name

pytestmark = pytest.mark.anyio

DAY = 86_400
OVERLAP = 3600  # sync's default --overlap


def _argv(pg: TestDatabase, url: str, queue: str, *extra: str) -> list[str]:
    return [
        "sync", "--db", pg.url, "--db-schema", pg.schema, "--since", "40d", "--once",
        "--broker", url, "--queue", queue, "--progress", "none", *extra,
    ]  # fmt: skip


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@contextlib.asynccontextmanager
async def _workers(emu: Emulator, url: str, queue: str, count: int = 1) -> AsyncIterator[None]:
    """``count`` workers in this process for the block, stopped after it."""
    settings = worker_settings([], _env(emu))
    stop = asyncio.Event()
    async with anyio.create_task_group() as tasks:
        for _ in range(count):
            broker = make_broker(url, queue=queue)
            tasks.start_soon(run_worker, broker, WorkerTasks(broker), settings, stop)
        try:
            yield
        finally:
            stop.set()


async def _queued(url: str, queue: str) -> list[tuple[str, list[Any]]]:
    """Every task ever put on the stream (acknowledged ones stay): (name, arguments)."""
    conn = aioredis.Redis.from_url(url)
    try:
        entries = await conn.xrange(queue) if await conn.exists(queue) else []
    finally:
        await conn.aclose()
    messages = [json.loads(fields[b"data"]) for _, fields in entries]
    return [(m["task_name"], m["args"]) for m in messages]


async def _state(pg: TestDatabase) -> SyncState | None:
    rows = await pg.fetch(
        f"SELECT state FROM {pg.table('feishu_vc_progress')} WHERE name = 'sync.state'"
    )
    return msgspec.msgpack.decode(rows[0][0], type=SyncState) if rows else None


async def _until(holds: Callable[[], Awaitable[bool]], url: str, queue: str) -> None:
    with anyio.move_on_after(DEADLINE):
        while not await holds():
            await anyio.sleep(0.02)
        return
    conn = aioredis.Redis.from_url(url)
    try:  # what the stream held when the deadline passed, to tell why
        groups = await conn.xinfo_groups(queue)
    finally:
        await conn.aclose()
    pytest.fail(f"not done within {DEADLINE} s; the stream's groups: {groups}")


async def test_once_with_a_broker_fills_the_tables(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=12, seed=91, rate_limit=None) as emu:
        listed = _listed(emu)
        truth = _truth(emu, listed)
        async with _workers(emu, url, queue, count=2):
            with anyio.fail_after(DEADLINE):
                code, out, err = await run_cli(_argv(pg, url, queue), {})
    assert code == 0, err
    state = await _state(pg)
    assert state is not None
    assert state.cycles == 1
    assert state.watermark > state.floor  # caught up: the watermark moved to the cycle's now
    window = f"from {_when(state.floor - DAY - OVERLAP)} to {_when(state.watermark)}"
    assert f"sync cycle 1: {len(listed)} meetings ended {window}, {len(listed)} new → " in out
    assert "by the workers of redis://" in out
    assert await pg.participants() == truth  # each participant once
    assert await _marked(pg) == len(listed) > 5


async def test_a_second_once_lists_from_the_watermark_and_queues_no_fetch(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    # An overlap that takes the second window back over every meeting: all listed again,
    # none fetched again.
    argv = _argv(pg, url, queue, "--overlap", "35d")
    async with Emulator(meetings=8, seed=92, rate_limit=None) as emu:
        listed = _listed(emu)
        truth = _truth(emu, listed)
        async with _workers(emu, url, queue):
            with anyio.fail_after(DEADLINE):
                code, _, err = await run_cli(argv, {})
            assert code == 0, err
            first = await _state(pg)
            assert first is not None
            before = len(await _queued(url, queue))
            assert before == 2  # the discovery and one fetch (a chunk of every meeting)
            emu.reset_log()
            with anyio.fail_after(DEADLINE):
                code, out, err = await run_cli(argv, {})
        assert code == 0, err
        assert not [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
    second = await _state(pg)
    assert second is not None
    assert (second.cycles, second.floor) == (2, first.floor)
    assert second.watermark >= first.watermark
    start = first.watermark - DAY - 35 * DAY  # from the kept watermark, not the floor
    window = f"from {_when(start)} to {_when(second.watermark)}"
    assert f"sync cycle 2: {len(listed)} meetings ended {window}, 0 new → " in out
    added = (await _queued(url, queue))[before:]
    assert [name for name, _ in added] == [DISCOVER_TASK]  # nothing to fetch
    assert added[0][1][1:3] == [start, second.watermark]
    assert await pg.participants() == truth
    # The discoveries' notes of each window are gone (each chunk's progress stays, as
    # the workers keep it); the sync's state stays.
    notes = {row[0] for row in await pg.fetch(f"SELECT name FROM {pg.table('feishu_vc_progress')}")}
    assert "sync.state" in notes
    assert len(notes) == 2  # the sync's state and the one chunk's progress
    assert not [n for n in notes if n.startswith("worker-discover:")]


async def test_a_meeting_refused_for_good_is_exit_1_named_and_the_watermark_stays(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=6, seed=93, rate_limit=None) as emu:
        listed = _listed(emu)
        refused = max(listed, key=lambda q: len(emu.participants(q)))
        emu.deny_meeting(refused)
        rest = [q for q in listed if q != refused]
        truth = _truth(emu, rest)
        async with _workers(emu, url, queue):
            with anyio.fail_after(DEADLINE):
                code, out, err = await run_cli(_argv(pg, url, queue), {})
    assert code == 1, err
    assert f", {len(listed)} new → " in out  # fetched or given up, as in-process
    assert "1 failed for good (asked again next cycle)" in out
    assert f"  {refused.meeting_no}@{refused.meeting_start_time}" in out
    state = await _state(pg)
    assert state is not None
    assert (state.cycles, state.watermark) == (1, state.floor)  # the window is asked again
    assert await pg.participants() == truth
    assert await _marked(pg) == len(rest)


def _subprocess(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "feishu_vc_async", *argv]


async def _interrupted(
    argv: list[str], emu: Emulator, url: str, queue: str, log: Path
) -> tuple[int, list[Any]]:
    """Run ``argv`` until its discovery is on the stream, then Ctrl-C: (exit code, the
    discovery's arguments)."""

    async def polled(_kill: Kill) -> Callable[[], Awaitable[bool]]:
        async def queued() -> bool:
            return any(name == DISCOVER_TASK for name, _ in await _queued(url, queue))

        return queued

    env = {"PATH": "/usr/bin"}
    code = await run_until(
        _subprocess(argv), env, log, emu, Kill("queued"), sig=signal.SIGINT, polled=polled
    )
    (discovery,) = [args for name, args in await _queued(url, queue) if name == DISCOVER_TASK]
    return code, discovery


async def test_ctrl_c_is_130_and_the_workers_go_on(
    pg: TestDatabase, redis14: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=8, seed=94, rate_limit=None) as emu:
        listed = _listed(emu)
        argv = [a for a in _argv(pg, url, queue) if a != "--once"]
        code, _ = await _interrupted(argv, emu, url, queue, tmp_path / "sync.log")
        said = (tmp_path / "sync.log").read_text()
        assert code == 130, said
        assert "interrupted; the workers go on with the queue" in said
        assert await _state(pg) is None  # no cycle ended: no watermark kept
        async with _workers(emu, url, queue):

            async def all_held() -> bool:
                return await _marked(pg) == len(listed)

            await _until(all_held, url, queue)  # the interrupted sync's window, done by the workers
            with anyio.fail_after(DEADLINE):
                code, out, err = await run_cli(_argv(pg, url, queue), {})
        truth = _truth(emu, listed)
    assert code == 0, err
    assert f"sync cycle 1: {len(listed)} meetings ended from " in out
    assert ", 0 new → " in out
    assert await pg.participants() == truth


async def test_a_store_app_queues_its_tenant(
    pg: TestDatabase, redis14: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=1, seed=95, rate_limit=None) as emu:
        argv = _argv(pg, url, queue, "--app-type", "store", "--tenant-key", "tenant-k")
        code, discovery = await _interrupted(argv, emu, url, queue, tmp_path / "sync.log")
    assert code == 130, (tmp_path / "sync.log").read_text()
    assert discovery[0] == "tenant-k"
    assert discovery[3:5] == [pg.url, pg.schema]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--webhook", "127.0.0.1:8080"], "--webhook with --broker: events are not taken"),
        (["--events"], "--events with --broker: events are not taken"),
        (["--db", "postgresql://u:secret@127.0.0.1:5432/test"], "--db holds a password"),
        (["--broker", "http://127.0.0.1:6379/14"], "expected redis://"),
        (["--table-prefix", "x_"], "--table-prefix with --broker"),
        (["--redact-pii"], "--redact-pii with --broker"),
        (["--concurrency", "4"], "--concurrency with --broker"),
        (["--page-size", "50"], "--page-size with --broker"),
        (["--meeting-no", "123456789"], "--meeting-no"),
        (["--include-webinars"], "--include-webinars"),
        (["--app-type", "store"], "--app-type store needs --tenant-key"),
        (["--tenant-key", "t1"], "--tenants and --tenant-key: for --app-type store only"),
        (["--interval", "0s"], "--interval '0s'"),
        (["--db", "meetings.jsonl"], "--db 'meetings.jsonl': expected postgresql://"),
    ],
)
async def test_bad_options_with_a_broker_queue_nothing(
    redis14: tuple[str, str], extra: list[str], said: str
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    argv = [
        "sync", "--db", "postgresql://127.0.0.1:5432/test", "--once",
        "--broker", url, "--queue", queue, *extra,
    ]  # fmt: skip
    code, out, err = await run_cli(argv, {})
    assert code == 2, err
    assert said in err
    assert "secret" not in err
    assert out == ""
    assert await _queued(url, queue) == []
