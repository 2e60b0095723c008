"""What the worker tests share: the database and Redis fixtures, the emulator's window,
listing and ground truth, the workers' environment, the meetings committed."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from msgspec.structs import astuple

from feishu_vc_async.emulator import Emulator
from feishu_vc_async.models import MeetingQuery
from tests._databases import TestDatabase, postgres_database

__all__ = ["DEADLINE", "_env", "_listed", "_marked", "_truth", "_window", "pg", "redis14"]

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
