"""What the worker tests share: the database and Redis fixtures, the emulator's window,
listing and ground truth, the workers' environment, the meetings committed, a worker
subprocess, the stream drained, and the wait on something observable under a deadline."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from msgspec.structs import astuple

from feishu_vc_async.emulator import Emulator
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.workers import WorkerSettings, WorkerTasks, make_broker, run_worker
from tests._databases import TestDatabase, postgres_database

__all__ = [
    "DEADLINE",
    "_drained",
    "_enqueuer",
    "_env",
    "_listed",
    "_marked",
    "_truth",
    "_until",
    "_window",
    "_worker",
    "_worker_running",
    "pg",
    "redis14",
]

DEADLINE = float(os.environ.get("FEISHU_VC_TEST_WORKER_DEADLINE", "120"))


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[TestDatabase]:
    async with postgres_database() as db:
        yield db


@pytest.fixture
async def redis14(redis_url: str) -> AsyncIterator[tuple[str, str]]:
    """DB 14's URL and this test's own key prefix (its keys deleted after)."""
    url = redis_url.rsplit("/", 1)[0] + "/14"
    prefix = f"fvtest-workers:{uuid.uuid4().hex[:8]}"
    yield url, prefix
    conn = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in conn.scan_iter(match=f"{prefix}*")]
        if keys:
            await conn.delete(*keys)
    finally:
        await conn.aclose()


def _window(emu: Emulator) -> tuple[int, int]:
    return (
        min(q.meeting_start_time for q in emu.meetings) - 1,
        max(q.meeting_end_time for q in emu.meetings) + 1,
    )


def _listed(emu: Emulator) -> list[MeetingQuery]:
    return [m.query() for m in emu.listed_meetings(*_window(emu))]


def _truth(emu: Emulator, queries: list[MeetingQuery]) -> dict[str, list[tuple[Any, ...]]]:
    truth = {}
    for query in queries:
        rows = [astuple(p) for p in emu.participants(query)]
        if rows:
            truth[f"{query.meeting_no}@{query.meeting_start_time}"] = rows
    return truth


def _env(emu: Emulator) -> dict[str, str]:
    return {
        "FEISHU_APP_ID": emu.app_id,
        "FEISHU_APP_SECRET": emu.app_secret,
        "FEISHU_BASE_URL": emu.base_url,
    }


async def _marked(db: TestDatabase) -> int:
    """Meetings whose participants are committed."""
    rows = await db.fetch(
        f"SELECT count(*) FROM {db.table('feishu_vc_meetings')} WHERE participant_rows IS NOT NULL"
    )
    return int(rows[0][0]) if rows else 0


async def _until(what: str, done: Callable[[], Awaitable[bool]]) -> None:
    """Look at ``done`` until it holds (each look is a query), failing at the deadline."""
    loop = asyncio.get_running_loop()
    until = loop.time() + DEADLINE
    while not await done():
        if loop.time() > until:
            pytest.fail(f"not within {DEADLINE:g} s: {what}")
        await asyncio.sleep(0.1)  # between two looks, not a wait for time to pass


async def _drained(url: str, queue: str) -> bool:
    """Every message of the stream delivered and acknowledged."""
    conn = aioredis.Redis.from_url(url)
    try:
        groups = await conn.xinfo_groups(queue)
    finally:
        await conn.aclose()
    return bool(groups) and all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


def _worker(
    emu: Emulator, url: str, prefix: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "feishu_vc_async", "worker", "--broker", url,
        "--queue", f"{prefix}:tasks", "--redis-url", url, "--redis-prefix", prefix,
        "--concurrency", "1", *extra,
    ]  # fmt: skip
    env = {**os.environ, **_env(emu)}
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


@asynccontextmanager
async def _enqueuer(url: str, queue: str) -> AsyncIterator[WorkerTasks]:
    """The tasks, to enqueue on the stream ``queue`` while the block runs."""
    broker = make_broker(url, queue=queue)
    await broker.startup()
    try:
        yield WorkerTasks(broker)
    finally:
        await broker.shutdown()


@asynccontextmanager
async def _worker_running(url: str, queue: str, settings: WorkerSettings) -> AsyncIterator[None]:
    """A worker in this process while the block runs; stopped (gracefully) after it."""
    broker = make_broker(url, queue=queue)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(broker, WorkerTasks(broker), settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(worker, DEADLINE)
