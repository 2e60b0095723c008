"""``feishu-vc export --broker``: the range is queued for the workers (two, in this
process, against the emulator, a real Redis stream and a real PostgreSQL) and the
command waits for them: exit 0, the tables equal the ground truth, each participant
once. Bad options are refused with exit 2 before anything is queued. Every wait is on
something observable (the command's own end, the stream), under a deadline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from feishu_vc_async.cli.worker import worker_settings
from feishu_vc_async.emulator import Emulator
from feishu_vc_async.workers import WorkerTasks, make_broker, run_worker
from tests._cli import run_cli
from tests._databases import TestDatabase
from tests._workers import (
    DEADLINE,
    _env,
    _listed,
    _marked,
    _truth,
    _window,
    pg,
    redis14,
)

__all__ = ["pg", "redis14"]  # the fixtures, used by name

pytestmark = pytest.mark.anyio


def _argv(out: str, url: str, queue: str, start: int, end: int, *extra: str) -> list[str]:
    return [
        "export", "--since", str(start), "--until", str(end), "--out", out,
        "--broker", url, "--queue", queue, "--rate-limit", "60/1s", "--quiet", *extra,
    ]  # fmt: skip


async def _stream_exists(url: str, queue: str) -> bool:
    conn = aioredis.Redis.from_url(url)
    try:
        return bool(await conn.exists(queue))
    finally:
        await conn.aclose()


async def test_export_with_a_broker_is_done_by_two_workers(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=12, seed=81, rate_limit=None) as emu:
        listed = _listed(emu)
        truth = _truth(emu, listed)
        settings = worker_settings(["--redis-url", url, "--redis-prefix", prefix], _env(emu))
        stop = asyncio.Event()
        workers = []
        for _ in range(2):
            broker = make_broker(url, queue=queue)
            workers.append(
                asyncio.create_task(run_worker(broker, WorkerTasks(broker), settings, stop))
            )
        try:
            argv = _argv(pg.url, url, queue, *_window(emu), "--db-schema", pg.schema)
            code, out, err = await asyncio.wait_for(run_cli(argv, {}), DEADLINE)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), DEADLINE)
        assert code == 0, err
        assert out == ""  # --quiet
        assert await pg.participants() == truth
        assert await _marked(pg) == len(listed) > 5


async def test_export_with_a_broker_says_how_it_went(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=6, seed=82, rate_limit=None) as emu:
        listed = _listed(emu)
        settings = worker_settings([], _env(emu))
        stop = asyncio.Event()
        broker = make_broker(url, queue=queue)
        worker = asyncio.create_task(run_worker(broker, WorkerTasks(broker), settings, stop))
        try:
            argv = _argv(pg.url, url, queue, *_window(emu), "--db-schema", pg.schema)
            argv.remove("--quiet")
            code, out, err = await asyncio.wait_for(run_cli(argv, {}), DEADLINE)
        finally:
            stop.set()
            await asyncio.wait_for(worker, DEADLINE)
        assert code == 0, err
        assert f"Exported {len(listed)} of {len(listed)} meetings" in out
        assert await pg.participants() == _truth(emu, listed)


@pytest.mark.parametrize(
    ("out", "said"),
    [
        ("meetings.jsonl", "a file output cannot be shared"),
        ("postgresql://u:secret@127.0.0.1:5432/test", "password"),
    ],
)
async def test_bad_options_with_a_broker_queue_nothing(
    redis14: tuple[str, str], tmp_path: Path, out: str, said: str
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    target = out if "://" in out else str(tmp_path / out)
    code, _, err = await run_cli(_argv(target, url, queue, 1_700_000_000, 1_700_086_400), {})
    assert code == 2
    assert said in err
    assert "secret" not in err
    assert not await _stream_exists(url, queue)
    assert not (tmp_path / "meetings.jsonl").exists()


async def test_a_meeting_refused_for_good_is_exit_1_and_named(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=6, seed=83, rate_limit=None) as emu:
        listed = _listed(emu)
        refused = max(listed, key=lambda q: len(emu.participants(q)))
        emu.deny_meeting(refused)
        stop = asyncio.Event()
        broker = make_broker(url, queue=queue)
        worker = asyncio.create_task(
            run_worker(broker, WorkerTasks(broker), worker_settings([], _env(emu)), stop)
        )
        try:
            argv = _argv(pg.url, url, queue, *_window(emu), "--db-schema", pg.schema)
            code, out, err = await asyncio.wait_for(run_cli(argv, {}), DEADLINE)
        finally:
            stop.set()
            await asyncio.wait_for(worker, DEADLINE)
        assert code == 1, err
        assert out == ""  # --quiet: the failures go to stderr
        assert f"{refused.meeting_no}@{refused.meeting_start_time}" in err
        rest = [q for q in listed if q != refused]
        assert await pg.participants() == _truth(emu, rest)
        assert await _marked(pg) == len(rest)
