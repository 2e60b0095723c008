"""The taskiq workers (``feishu_vc_async.workers``) with the real Redis broker, a real
PostgreSQL and the emulator: discovery → fetch tasks → the tables equal the ground
truth, each participant once; a fetch delivered twice writes once; a worker killed
with ``kill -9`` mid-run loses nothing (its unacknowledged task comes back to another).
Every wait is on something observable (rows, the stream's pending list), under a
deadline."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.cli.worker import worker_settings
from feishu_vc_async.emulator import Emulator, RequestRecord
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.workers import WorkerTasks, make_broker
from tests._databases import TestDatabase
from tests._workers import (
    DEADLINE,
    _drained,
    _enqueuer,
    _env,
    _listed,
    _marked,
    _truth,
    _until,
    _window,
    _worker,
    _worker_running,
    pg,
    redis14,
)

pytestmark = pytest.mark.anyio

__all__ = ["pg", "redis14"]  # the fixtures, used by name


async def _pending(url: str, queue: str) -> int:
    conn = aioredis.Redis.from_url(url)
    try:
        return int((await conn.xpending(queue, queue))["pending"])
    finally:
        await conn.aclose()


async def test_discovery_then_one_worker_fills_the_tables_each_participant_once(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=12, seed=71, rate_limit=None) as emu:
        listed = _listed(emu)
        truth = _truth(emu, listed)
        async with _enqueuer(url, queue) as tasks:
            await tasks.enqueue_discovery("", *_window(emu), pg.url, pg.schema)

        settings = worker_settings(["--redis-url", url, "--redis-prefix", prefix], _env(emu))
        async with _worker_running(url, queue, settings):
            await _until("every meeting committed", lambda: _is(pg, truth))
            await _until("the queue drained", lambda: _drained(url, queue))
        assert await pg.participants() == truth
        assert await _marked(pg) == len(listed) > 5
        fetched = [r for r in emu.requests if "participant_list" in r.path]
        pages = {(r.params["meeting_no"], r.params.get("page_token")) for r in fetched}
        assert len(pages) == len(fetched)  # no page asked twice: each meeting fetched once
        assert await _limiter_keys(url, prefix)  # paced through the shared Redis limiter


async def _limiter_keys(url: str, prefix: str) -> list[bytes]:
    conn = aioredis.Redis.from_url(url)
    try:
        return [k async for k in conn.scan_iter(match=f"{prefix}:ratelimit:*")]
    finally:
        await conn.aclose()


async def _is(db: TestDatabase, truth: dict[str, list[tuple[Any, ...]]]) -> bool:
    return await db.participants() == truth


async def test_the_same_fetch_delivered_twice_writes_once(
    pg: TestDatabase, redis14: tuple[str, str]
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    async with Emulator(meetings=6, seed=72, rate_limit=None) as emu:
        query = max(_listed(emu), key=lambda q: len(emu.participants(q)))
        async with _enqueuer(url, queue) as tasks:
            for _ in range(2):
                await tasks.enqueue_fetch("", [query], pg.url, pg.schema)

        settings = worker_settings([], _env(emu), concurrency=2)
        async with _worker_running(url, queue, settings):
            await _until("the queue drained", lambda: _drained(url, queue))
        assert await pg.participants() == _truth(emu, [query])
        fetched = [r for r in emu.requests if "participant_list" in r.path]
        pages = [r.params.get("page_token") for r in fetched]
        assert fetched
        assert len(set(pages)) == len(pages)  # the second delivery found it held
        assert await _marked(pg) == 1


def test_a_password_in_the_database_url_is_refused_before_it_is_queued() -> None:
    tasks = WorkerTasks(make_broker("memory://"))
    query = MeetingQuery(meeting_no="1", meeting_start_time=1, meeting_end_time=2)
    with pytest.raises(ValueError, match="password"):
        asyncio.run(tasks.enqueue_fetch("", [query], "postgresql://u:secret@h/db"))


@pytest.mark.slow
async def test_a_worker_killed_mid_run_loses_nothing(
    pg: TestDatabase, redis14: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    log = tmp_path / "workers.log"
    async with Emulator(meetings=12, seed=73, rate_limit=None) as emu:
        listed = _listed(emu)
        truth = _truth(emu, listed)
        async with _enqueuer(url, queue) as tasks:
            await tasks.enqueue_discovery("", *_window(emu), pg.url, pg.schema)

        first = _worker(emu, url, prefix, log, "--rate-limit", "4/1s")
        armed = False

        def kill_at_a_fetch(record: RequestRecord) -> None:
            # Killed as a meeting's page is asked, before the answer: that task is in
            # hand, read from the stream and not acknowledged (killed between two tasks,
            # none would be).
            if armed and record.path == PARTICIPANT_LIST_PATH and first.poll() is None:
                first.send_signal(signal.SIGKILL)

        emu.on_record(kill_at_a_fetch)
        try:
            await _until("a first meeting committed", lambda: _at_least(pg, 1))
            armed = True
            await asyncio.to_thread(first.wait)
            assert await _marked(pg) < len(listed)  # killed mid-run
        finally:
            emu.on_record(None)
            if first.poll() is None:
                first.kill()
                first.wait()
        assert await _pending(url, queue) >= 1  # the killed worker's task, unacknowledged

        second = _worker(emu, url, prefix, log, "--redeliver-after", "1")
        try:
            await _until("every meeting committed", lambda: _is(pg, truth))
            await _until("the queue drained", lambda: _drained(url, queue))
        finally:
            second.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(second.wait, DEADLINE)
        assert code == 0, log.read_text()
        assert await pg.participants() == truth
        assert await _marked(pg) == len(listed)


async def _at_least(db: TestDatabase, n: int) -> bool:
    return await _marked(db) >= n


async def _group(url: str, queue: str) -> dict[str, Any]:
    conn = aioredis.Redis.from_url(url)
    try:
        groups = await conn.xinfo_groups(queue)
    finally:
        await conn.aclose()
    return {str(k): v for k, v in groups[0].items()}


@pytest.mark.slow
async def test_sigterm_hands_the_chunk_back_after_its_meeting_then_a_worker_finishes_it(
    pg: TestDatabase, redis14: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    log = tmp_path / "worker.log"
    async with Emulator(meetings=12, seed=74, rate_limit=None) as emu:
        listed = _listed(emu)
        truth = _truth(emu, listed)
        async with _enqueuer(url, queue) as tasks:
            await tasks.enqueue_discovery("", *_window(emu), pg.url, pg.schema)
        worker = _worker(emu, url, prefix, log, "--rate-limit", "4/1s")
        try:
            await _until("a first meeting committed", lambda: _at_least(pg, 1))
            worker.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(worker.wait, DEADLINE)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert code == 0, log.read_text()
        # The chunk in hand (every meeting, one task) was handed back unacknowledged
        # once the meeting being written was committed: some committed, not all.
        assert (await _group(url, queue))["pending"] == 1
        assert 1 <= await _marked(pg) < len(listed)
        committed = await pg.participants()
        assert all(rows == truth[key] for key, rows in committed.items())  # each whole

        second = _worker(emu, url, prefix, log, "--redeliver-after", "1")
        try:
            await _until("every meeting committed", lambda: _is(pg, truth))
            await _until("the queue drained", lambda: _drained(url, queue))
        finally:
            second.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(second.wait, DEADLINE)
        assert code == 0, log.read_text()
        assert await pg.participants() == truth


async def test_an_abandoned_task_behind_ten_held_ones_is_taken_over(
    redis14: tuple[str, str],
) -> None:
    """XAUTOCLAIM looks at ten pending entries a call: a task abandoned behind ten held
    ones (their workers alive) must still be found, by following its cursor (found
    only after the held ones were done, a killed worker's chunks waited tens of
    seconds while the live workers' chunks ran)."""
    url, prefix = redis14
    queue = f"{prefix}:tasks"
    broker = make_broker(url, queue=queue, redeliver_after=1.0, poll=0.1)
    await broker.startup()
    conn = aioredis.Redis.from_url(url)
    messages = broker.listen()
    try:
        ids: list[Any] = [await conn.xadd(queue, {b"data": b"%d" % i}) for i in range(12)]
        await conn.xreadgroup(queue, "gone", {queue: ">"}, count=12)

        async def all_idle() -> bool:
            pending = await conn.xpending_range(queue, queue, "-", "+", 12)
            return all(int(p["time_since_delivered"]) >= 1000 for p in pending)

        await _until("every task idle past redeliver_after", all_idle)
        # The first eleven are held again (as live workers do); the last is not.
        await conn.xclaim(queue, queue, "alive", 0, ids[:11], justid=True)
        taken = await asyncio.wait_for(anext(messages), DEADLINE)
        assert not isinstance(taken, bytes)
        assert taken.data == b"11"
    finally:
        await messages.aclose()
        await conn.aclose()
        await broker.shutdown()


def test_a_worker_paces_through_the_brokers_redis_unless_given_another() -> None:
    """``feishu-vc worker --broker redis://... --rate-limit 60/1s`` without ``--redis-url``:
    the workers still share one budget and the tokens (each alone would spend it all)."""
    from feishu_vc_async.cli._main import build_parser
    from feishu_vc_async.cli._options import ClientSettings
    from feishu_vc_async.cli.worker import command_settings

    env = {"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s" * 16}
    broker, other = "redis://127.0.0.1:6379/14", "redis://127.0.0.1:6379/3"

    def redis_of(argv: list[str], environ: dict[str, str]) -> str | None:
        args = build_parser().parse_args(["worker", "--broker", broker, *argv])
        client = command_settings(args, environ).client
        assert isinstance(client, ClientSettings)
        return client.redis_url

    assert redis_of(["--rate-limit", "60/1s"], env) == broker
    assert redis_of(["--redis-url", other], env) == other
    assert redis_of([], {**env, "FEISHU_VC_REDIS_URL": other}) == other
