"""Redis restarted mid-run (issue 22): two ``feishu-vc worker`` processes export a
window through a Redis of the test's own, kept on disk (AOF, ``appendfsync always``);
once a first meeting is committed Redis is killed, each worker says it is waiting (the
next stream read failed) and stays alive, Redis comes back on the same port with its
data, and the workers go on: every participant in PostgreSQL exactly once, equal to
the emulator's ground truth, the stream drained, no 429 at the emulator (the limiter's
windows were kept too), and both workers exit 0 on SIGTERM.

The chunk a worker had in hand when Redis went away fails at its next slot of the
limiter (no fallback: ``--redis-fallback`` is not given) and is left unacknowledged; it
comes back after ``--redeliver-after`` and the meetings it had committed are skipped.

Every wait is on something observable (rows, the stream, the workers' logs), under a
deadline; nothing waits for time to pass.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from feishu_vc_async.emulator import Emulator
from feishu_vc_async.ratelimit import RateLimit
from feishu_vc_async.workers import WorkerTasks, make_broker
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
# What the broker's listen loop logs once per outage, and once Redis answers again.
AWAY = "the task queue at 127.0.0.1:{port}/0 cannot be reached"
BACK = "the task queue at 127.0.0.1:{port}/0 answers again"


@pytest.mark.slow
async def test_workers_wait_through_a_redis_restart_and_lose_or_double_nothing(
    pg: TestDatabase, tmp_path: Path
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
        url = redis.url
        listed = _listed(emu)
        truth = _truth(emu, listed)
        broker = make_broker(url, queue=queue)
        await broker.startup()
        try:  # chunks of 3 meetings: both workers have some in hand
            await WorkerTasks(broker).enqueue_discovery(
                "", *_window(emu), pg.url, pg.schema, chunk=3
            )
        finally:
            await broker.shutdown()

        extra = ("--rate-limit", "4/1s", "--redeliver-after", "2")
        workers = [_worker(emu, url, prefix, log, *extra) for log in logs]
        try:
            await _until("a first meeting committed", lambda: _at_least(pg, 1))
            await redis.stop()
            committed = await _marked(pg)
            away = AWAY.format(port=redis.port)
            await _until("each worker waiting for Redis", lambda: _said(workers, logs, away))
            assert all(w.poll() is None for w in workers), _logs(logs)
            assert committed < len(listed)  # stopped mid-run

            await redis.start()
            await _until("every meeting committed", lambda: _is(pg, truth))
            await _until("the queue drained", lambda: _drained(url, queue))
            back = BACK.format(port=redis.port)
            assert all(back in log.read_text() for log in logs), _logs(logs)
            assert all(w.poll() is None for w in workers), _logs(logs)
        finally:
            codes = await _stopped(workers)
        assert codes == [0, 0], _logs(logs)
        assert await pg.participants() == truth
        assert await _marked(pg) == len(listed) > 5
        assert [r for r in emu.requests if r.status == 429 or r.code == 99991400] == []
        assert all(log.read_text().count(away) == 1 for log in logs), _logs(logs)
        assert "consumer group" not in _logs(logs)  # Redis kept the stream (AOF)
        assert secret not in _logs(logs)


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
