"""Redis restarted mid-run (issue 22): two ``feishu-vc worker`` processes export a
window through a Redis of the test's own, kept on disk (AOF, ``appendfsync always``);
once a first meeting is committed Redis is killed, each worker says it is waiting (its
next stream read failed) and stays alive, the enqueuer's watch looks on without
raising, Redis comes back on the same port with its data, and the workers go on:
every participant in PostgreSQL exactly once, equal to the emulator's ground truth, the
stream drained, the watch done, no 429 at the emulator (the limiter's windows were kept
too), and both workers exit 0 on SIGTERM.

A chunk a worker has in hand when Redis goes away fails at its next slot of the limiter
(no ``--redis-fallback``) or at its acknowledgement, and is left unacknowledged; it
comes back after ``--redeliver-after`` and the meetings it had committed are skipped.
Two quick tests of the broker alone: an acknowledgement failed for want of Redis leaves
its message to come back, and a consumer group lost with Redis's data is made again.

Every wait is on something observable (rows, the stream, the logs), under a deadline;
nothing waits for time to pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from taskiq import AckableMessage

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, RequestRecord
from feishu_vc_async.ratelimit import RateLimit
from feishu_vc_async.workers import WorkerTasks, make_broker, watch_window
from feishu_vc_async.workers._broker import UNREACHABLE
from tests._databases import TestDatabase
from tests._redis_server import PrivateRedis, redis_server_executable
from tests._workers import (
    DEADLINE,
    _drained,
    _listed,
    _marked,
    _truth,
    _until,
    _window,
    _worker,
    pg,
)

pytestmark = pytest.mark.anyio

__all__ = ["pg"]  # the fixture, used by name

# The emulator's data; FEISHU_VC_TEST_SEED picks another (printed either way).
SEED = int(os.environ.get("FEISHU_VC_TEST_SEED", "2201"))
RUN = "redis-restart"  # the enqueuing's run token, which the watch looks for
# What the broker's listen loop logs once per outage, and once Redis answers again.
AWAY = "the task queue at 127.0.0.1:{port}/0 cannot be reached"
BACK = "the task queue at 127.0.0.1:{port}/0 answers again"


async def test_workers_wait_through_a_redis_restart_and_lose_or_double_nothing(
    pg: TestDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    print(f"emulator seed {SEED} (FEISHU_VC_TEST_SEED)")
    directory = tmp_path / "redis"
    directory.mkdir()
    secret = "s3cret-redis-pw"  # in the URLs the workers are given, never in their logs
    redis = PrivateRedis(redis_server_executable(), directory, appendonly=True, password=secret)
    prefix = "fvtest-restart"
    queue = f"{prefix}:tasks"
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    # The gateway admits 6 a second, the workers pace 4 a second between them: headroom
    # for a loaded machine's jitter, none for two workers each pacing alone (8 a second).
    async with redis, Emulator(meetings=16, seed=SEED, rate_limit=RateLimit(6, 1.0)) as emu:
        url, (start, end) = redis.url, _window(emu)
        listed = _listed(emu)
        truth = _truth(emu, listed)
        broker = make_broker(url, queue=queue)
        await broker.startup()
        try:  # chunks of 3 meetings: both workers have some in hand
            tasks = WorkerTasks(broker)
            await tasks.enqueue_discovery("", start, end, pg.url, pg.schema, RUN, chunk=3)
        finally:
            await broker.shutdown()

        extra = ("--rate-limit", "4/1s", "--redeliver-after", "2")
        workers = [_worker(emu, url, prefix, log, *extra) for log in logs]
        watching = watch_window(url, queue, [""], start, end, RUN, pg.url, pg.schema)
        try:
            async with watching as watch:  # the enqueuer's watch (export --broker's)
                await _until("a first meeting committed", lambda: _at_least(pg, 1))
                # Killed as a meeting's page is asked, before the answer: that worker has
                # a chunk in hand, read and not acknowledged, whatever the machine's pace.
                killed_at: list[RequestRecord] = []

                def kill_at_a_fetch(record: RequestRecord) -> None:
                    if record.path == PARTICIPANT_LIST_PATH and not killed_at:
                        redis.kill()
                        killed_at.append(record)

                emu.on_record(kill_at_a_fetch)
                await _until("Redis killed at a fetch", lambda: _some(killed_at))
                emu.on_record(None)
                await redis.stop()
                committed = await _marked(pg)
                away = AWAY.format(port=redis.port)
                await _until("each worker waiting for Redis", lambda: _said(workers, logs, away))
                assert all(w.poll() is None for w in workers), _logs(logs)
                assert committed < len(listed)  # stopped mid-run
                seen = await watch.look()  # Redis away: the watch goes on, not done
                assert (seen.pending, seen.lag, seen.done) == (None, None, False)

                await redis.start()
                await _until("every meeting committed", lambda: _is(pg, truth))
                await _until("the queue drained", lambda: _drained(url, queue))
                seen = await watch.look()
                assert (seen.done, seen.complete, seen.held) == (True, True, len(listed))
            back = BACK.format(port=redis.port)
            assert all(back in log.read_text() for log in logs), _logs(logs)
            assert all(w.poll() is None for w in workers), _logs(logs)
        finally:
            codes = await _stopped(workers)
        assert codes == [0, 0], _logs(logs)
        assert await pg.participants() == truth
        assert await _marked(pg) == len(listed) > 5
        assert [r for r in emu.requests if r.status == 429 or r.code == 99991400] == []
        said = _logs(logs) + caplog.text
        # The chunk in hand failed (at its next limiter slot, or at its acknowledgement)
        # and was done again by a worker: the tables above hold each participant once.
        assert "Exception found while executing function" in said
        assert all(log.read_text().count(away) == 1 for log in logs), said  # once an outage
        assert caplog.text.count(away) == caplog.text.count(back) == 1  # the watch's
        assert "consumer group" not in said  # Redis kept the stream (AOF)
        assert secret not in said


async def test_a_worker_started_before_redis_waits_for_it(pg: TestDatabase, tmp_path: Path) -> None:
    """Workers started while Redis is not up yet (a deployment's order, or Redis
    restarting) say once that they wait, and do: one stopped meanwhile exits 0, the
    other takes the export once Redis is up. (They ended in a traceback before.)"""
    print(f"emulator seed {SEED} (FEISHU_VC_TEST_SEED)")
    redis = PrivateRedis(redis_server_executable(), tmp_path)  # not started yet
    prefix = "fvtest-before"
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    async with Emulator(meetings=6, seed=SEED, rate_limit=None) as emu:
        url, (start, end) = redis.url, _window(emu)
        truth = _truth(emu, _listed(emu))
        workers = [_worker(emu, url, prefix, log) for log in logs]
        try:
            away = AWAY.format(port=redis.port)
            await _until("both workers waiting for Redis", lambda: _said(workers, logs, away))
            workers[1].send_signal(signal.SIGTERM)
            assert workers[1].wait(DEADLINE) == 0, _logs(logs)
            async with redis:
                broker = make_broker(url, queue=f"{prefix}:tasks")
                await broker.startup()
                try:
                    tasks = WorkerTasks(broker)
                    await tasks.enqueue_discovery("", start, end, pg.url, pg.schema, RUN)
                finally:
                    await broker.shutdown()
                await _until("every meeting committed", lambda: _is(pg, truth))
                back = BACK.format(port=redis.port)
                assert back in logs[0].read_text(), _logs(logs)
                codes = await _stopped(workers[:1])
        finally:
            await _stopped(workers)
    assert codes == [0], _logs(logs)
    assert await pg.participants() == truth
    said = _logs(logs)
    assert "Traceback" not in said
    assert all(log.read_text().count(away) == 1 for log in logs), said


async def test_a_read_waits_for_redis_and_a_message_whose_ack_failed_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with PrivateRedis(redis_server_executable(), tmp_path, appendonly=True) as redis:
        broker = make_broker(redis.url, queue="q", redeliver_after=0.5, poll=0.2)
        await broker.startup()
        messages = broker.listen()
        reading: asyncio.Future[AckableMessage] | None = None
        try:
            await _add(redis.url, b"one")
            first = await anext(messages)
            assert first.data == b"one"
            await redis.stop()
            with pytest.raises(UNREACHABLE):  # its task raises: not acknowledged
                await first.ack()
            reading = asyncio.ensure_future(anext(messages))
            away = AWAY.format(port=redis.port)
            await _until("the read waiting for Redis", lambda: _logged(caplog, away))
            assert not reading.done()
            await redis.start()
            again = await asyncio.wait_for(reading, DEADLINE)  # taken over: idle 0.5 s
            assert again.data == b"one"
            await again.ack()
        finally:
            await _close(messages, reading)
            await broker.shutdown()
    assert caplog.text.count(away) == caplog.text.count(BACK.format(port=redis.port)) == 1


async def test_a_consumer_group_lost_with_redis_data_is_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with PrivateRedis(redis_server_executable(), tmp_path) as redis:  # no AOF
        broker = make_broker(redis.url, queue="q", poll=0.2)
        await broker.startup()
        messages = broker.listen()
        reading = asyncio.ensure_future(anext(messages))
        try:
            await redis.stop()
            await _until("the read waiting", lambda: _logged(caplog, "cannot be reached"))
            await redis.start()  # empty: no stream, no group
            await _add(redis.url, b"after")
            message = await asyncio.wait_for(reading, DEADLINE)
            assert message.data == b"after"
        finally:
            await _close(messages, reading)
            await broker.shutdown()
    assert "lost its consumer group" in caplog.text


async def _close(
    messages: AsyncGenerator[AckableMessage, None], reading: asyncio.Future[Any] | None
) -> None:
    """The listening generator closed, after the read in flight (a failed test's)."""
    if reading is not None and not reading.done():
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
    await messages.aclose()


async def _add(url: str, data: bytes) -> None:
    conn = aioredis.Redis.from_url(url)
    try:
        await conn.xadd("q", {b"data": data})
    finally:
        await conn.aclose()


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return text in caplog.text


async def _some(records: list[RequestRecord]) -> bool:
    return bool(records)


async def _at_least(db: TestDatabase, n: int) -> bool:
    return await _marked(db) >= n


async def _is(db: TestDatabase, truth: dict[str, list[tuple[object, ...]]]) -> bool:
    return await db.participants() == truth


async def _said(workers: list[subprocess.Popen[bytes]], logs: list[Path], line: str) -> bool:
    """Whether every worker logged ``line``; fails at once when one has exited."""
    if any(w.poll() is not None for w in workers):
        pytest.fail(f"a worker exited while Redis was away:\n{_logs(logs)}")
    return all(line in log.read_text() for log in logs)


async def _stopped(workers: list[subprocess.Popen[bytes]]) -> list[int | None]:
    """SIGTERM to each worker still running, then each one's exit code (killed when it
    does not exit within the deadline: None)."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for worker in workers:
        try:
            codes.append(await asyncio.to_thread(worker.wait, DEADLINE))
        except subprocess.TimeoutExpired:
            worker.kill()
            await asyncio.to_thread(worker.wait)
            codes.append(None)
    return codes


def _logs(logs: list[Path]) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in logs)
