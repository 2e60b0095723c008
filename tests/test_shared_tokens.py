"""Tenant tokens shared through Redis (``SharedTokens``): separate clients and separate
processes of one app against one emulator fetch one token per tenant per expiry; a
refused token is dropped (only while Redis still holds it) and fetched again once;
without Redis each process fetches its own and says so, without a secret.

Real Redis (a key prefix of each test's own), the real emulator, real processes. Time
passes by scaled token lifetimes; the tests wait on what they can see (a key gone from
Redis, the emulator's request log), never on a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from feishu_vc_async import AppCredentials, Limits, VCClient
from feishu_vc_async._constants import (
    APP_ACCESS_TOKEN_PATH,
    PARTICIPANT_LIST_PATH,
    STORE_TENANT_TOKEN_PATH,
    TENANT_TOKEN_PATH,
)
from feishu_vc_async.auth import SharedTokens, StoreAppTokenProvider
from feishu_vc_async.auth._shared_tokens import Fetched
from feishu_vc_async.cli import build_parser
from feishu_vc_async.cli._options import client_settings
from feishu_vc_async.emulator import Emulator
from feishu_vc_async.models import MeetingQuery

WORKER = Path(__file__).with_name("_token_worker.py")
UNREACHABLE = "redis://:s3cret-pass@127.0.0.1:1/0"
# Scaled lifetimes: a token is refreshed at half its life, the emulator hands out the
# same token while over a quarter is left. 16 s keeps every key at least ~4 s in Redis,
# far longer than a round of requests takes even on a loaded machine.
LIFETIME = 16.0
FELL_BACK = "tokens are not shared"


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test alone; every key under it is deleted afterwards."""
    name = f"feishu_vc_test_tokens_{uuid.uuid4().hex[:12]}"
    yield name
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{name}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def fetches(emu: Emulator, path: str) -> int:
    return len([r for r in emu.requests if r.path == path])


async def wait_gone(redis_url: str, keys: Iterable[str]) -> None:
    """Until none of ``keys`` is in Redis (their TTLs ran out)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(300):  # a hang, not a pace
            while await client.exists(*keys):
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def redis_get(redis_url: str, key: str) -> str | None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        value = await client.get(key)
    finally:
        await client.aclose()
    return None if value is None else value.decode()


@contextlib.asynccontextmanager
async def clients(emu: Emulator, n: int, shared: Any) -> AsyncIterator[list[VCClient]]:
    """``n`` separate clients of the emulator's custom app, each with its own
    ``shared()`` (nothing in common but Redis)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                VCClient(
                    AppCredentials(emu.app_id, emu.app_secret, shared=shared()),
                    base_url=emu.base_url,
                    limits=Limits.unlimited(),
                )
            )
            for _ in range(n)
        ]


async def one_round(clients: Sequence[VCClient], queries: Sequence[MeetingQuery]) -> None:
    """Every client asks for a page of each query, all at once."""
    pages = await asyncio.gather(
        *(c.participant_list(q, page_size=20) for c in clients for q in queries)
    )
    assert len(pages) == len(clients) * len(queries)


class Workers:
    """``n`` processes of ``tests/_token_worker.py``, each told ``go`` at once."""

    def __init__(self, n: int, config: dict[str, Any]) -> None:
        self.n, self.config = n, config
        self.procs: list[asyncio.subprocess.Process] = []
        self.stderr: list[str] = []

    async def __aenter__(self) -> Workers:
        for _ in range(self.n):
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(WORKER),
                    json.dumps(self.config),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        for proc in self.procs:
            assert proc.stdout is not None
            ready = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert ready.strip() == b"ready", ready
        return self

    async def go(self) -> list[dict[str, int]]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        answers = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, "a worker ended early"
            answers.append(json.loads(line))
        return answers

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs:
            try:
                _, err = await asyncio.wait_for(proc.communicate(b"quit\n"), 60)
                self.stderr.append(err.decode())
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        assert [p.returncode for p in self.procs] == [0] * self.n, self.stderr


def worker_config(emu: Emulator, redis_url: str, prefix: str, **more: Any) -> dict[str, Any]:
    queries = {"": emu.meetings[:2]}
    return {
        "base_url": emu.base_url,
        "app_id": emu.app_id,
        "app_secret": emu.app_secret,
        "redis_url": redis_url,
        "prefix": prefix,
        "queries": msgspec.json.encode(queries).decode(),
        **more,
    }


# --- one token per tenant per expiry ---------------------------------------------------


@pytest.mark.slow
async def test_four_clients_fetch_one_token_per_expiry(redis_url: str, prefix: str) -> None:
    key = SharedTokens(redis_url, prefix=prefix).tenant_key
    async with (
        Emulator(meetings=4, seed=31, rate_limit=None, token_lifetime=LIFETIME) as emu,
        clients(emu, 4, lambda: SharedTokens(redis_url, prefix=prefix)) as four,
    ):
        for expiry in range(3):  # the first token, then two expiries
            await one_round(four, emu.meetings[:2])
            assert fetches(emu, TENANT_TOKEN_PATH) == expiry + 1
            await one_round(four, emu.meetings[2:])  # every cache is warm now
            assert fetches(emu, TENANT_TOKEN_PATH) == expiry + 1
            await wait_gone(redis_url, [key(emu.app_id)])
        assert fetches(emu, PARTICIPANT_LIST_PATH) == 3 * 4 * 4
        assert {r.code for r in emu.requests} == {0}


@pytest.mark.slow
async def test_three_processes_fetch_one_token_per_expiry(redis_url: str, prefix: str) -> None:
    key = SharedTokens(redis_url, prefix=prefix).tenant_key
    async with Emulator(meetings=2, seed=32, rate_limit=None, token_lifetime=LIFETIME) as emu:
        async with Workers(3, worker_config(emu, redis_url, prefix)) as workers:
            for expiry in range(3):
                assert await workers.go() == [{"pages": 2}] * 3
                assert fetches(emu, TENANT_TOKEN_PATH) == expiry + 1
                await wait_gone(redis_url, [key(emu.app_id)])
        assert {r.code for r in emu.requests} == {0}
    assert not any(FELL_BACK in err for err in workers.stderr)


@pytest.mark.slow
async def test_a_store_app_of_five_tenants_in_three_processes(redis_url: str, prefix: str) -> None:
    shared = SharedTokens(redis_url, prefix=prefix)
    async with Emulator(meetings=2, seed=33, rate_limit=None, token_lifetime=LIFETIME) as emu:
        app = emu.add_store_app(tenants=5)
        queries = {key: emu.tenant(key).meetings[:1] for key in app.tenant_keys}
        config = {
            **worker_config(emu, redis_url, prefix),
            "app_id": app.app_id,
            "app_secret": app.app_secret,
            "ticket": emu.app_ticket(app.app_id),
            "queries": msgspec.json.encode(queries).decode(),
        }
        keys = [shared.app_key(app.app_id)]
        keys += [shared.tenant_key(app.app_id, key) for key in app.tenant_keys]
        async with Workers(3, config) as workers:
            for expiry in range(3):
                assert await workers.go() == [{"pages": 5}] * 3
                # Every tenant needed a token in each round: five fetches are one each.
                assert fetches(emu, APP_ACCESS_TOKEN_PATH) == expiry + 1
                assert fetches(emu, STORE_TENANT_TOKEN_PATH) == 5 * (expiry + 1)
                await wait_gone(redis_url, keys)
        assert {r.code for r in emu.requests} == {0}
        assert fetches(emu, TENANT_TOKEN_PATH) == 0


# --- refused tokens ------------------------------------------------------------------------


async def test_a_refused_token_is_dropped_and_fetched_again_once(
    redis_url: str, prefix: str
) -> None:
    key = SharedTokens(redis_url, prefix=prefix).tenant_key
    async with (
        Emulator(meetings=2, seed=34, rate_limit=None) as emu,
        clients(emu, 4, lambda: SharedTokens(redis_url, prefix=prefix)) as four,
    ):
        await one_round(four, emu.meetings)
        first = await redis_get(redis_url, key(emu.app_id))
        assert first is not None
        assert fetches(emu, TENANT_TOKEN_PATH) == 1
        emu.revoke_token(first)
        await one_round(four, emu.meetings)  # every client is refused, then retries
        assert fetches(emu, TENANT_TOKEN_PATH) == 2
        second = await redis_get(redis_url, key(emu.app_id))
        assert second not in (None, first)
        refused = [r for r in emu.requests if r.code == 99991663]
        assert {r.token for r in refused} == {first}
        assert 1 <= len(refused) <= 4 * 2  # at most each request once, then the new token


async def test_compare_and_delete_keeps_a_newer_token(redis_url: str, prefix: str) -> None:
    shared = SharedTokens(redis_url, prefix=prefix)
    key = shared.tenant_key("cli_x", "tenant_a")
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set(key, "t-newer", px=60_000)
        assert not await shared.discard(key, "t-older")
        assert await client.get(key) == b"t-newer"
        assert await shared.discard(key, "t-newer")
        assert await client.get(key) is None
    finally:
        await client.aclose()
    # Two clients hold one token; A is refused first and stores a new one; B's refusal
    # of the old token, later, neither deletes the new one nor fetches a third.
    key = shared.tenant_key
    async with (
        Emulator(meetings=2, seed=35, rate_limit=None) as emu,
        clients(emu, 2, lambda: SharedTokens(redis_url, prefix=prefix)) as (a, b),
    ):
        await one_round([a, b], emu.meetings[:1])
        old = await redis_get(redis_url, key(emu.app_id))
        assert old is not None
        emu.revoke_token(old)
        await one_round([a], emu.meetings[:1])
        newer = await redis_get(redis_url, key(emu.app_id))
        assert newer not in (None, old)
        await one_round([b], emu.meetings[:1])
        assert await redis_get(redis_url, key(emu.app_id)) == newer
        assert fetches(emu, TENANT_TOKEN_PATH) == 2
        used = [r.token for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
        assert used == [old, old, old, newer, old, newer]


# --- without Redis ----------------------------------------------------------------------


@pytest.mark.slow
async def test_without_redis_each_process_fetches_its_own_and_says_so(prefix: str) -> None:
    async with Emulator(meetings=2, seed=36, rate_limit=None) as emu:
        async with Workers(3, worker_config(emu, UNREACHABLE, prefix)) as workers:
            assert await workers.go() == [{"pages": 2}] * 3
            assert await workers.go() == [{"pages": 2}] * 3  # its own token, cached
        assert fetches(emu, TENANT_TOKEN_PATH) == 3
        tokens = {r.token for r in emu.requests if r.token}
    assert len(tokens) == 1  # the emulator hands the same token to each of them
    for err in workers.stderr:
        assert err.count(FELL_BACK) == 1, err
        assert "127.0.0.1:1/0" in err
        assert "s3cret-pass" not in err
        assert not any(token in err for token in tokens)
        assert emu.app_secret not in err


async def test_fallback_is_logged_once_and_shared_again_when_redis_answers(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    shared = SharedTokens(UNREACHABLE, prefix=prefix)
    clock = iter(range(1000)).__next__
    calls = 0

    async def fetch() -> Fetched:
        nonlocal calls
        calls += 1
        return Fetched(f"t-{calls}", 1e9)

    with caplog.at_level(logging.INFO, logger="feishu_vc_async"):
        assert await shared.token("k", fetch, lambda: float(clock())) == ("t-1", 1e9)
        assert await shared.token("k", fetch, lambda: float(clock())) == ("t-2", 1e9)
        shared._redis = redis_url  # the same instance, Redis back
        key = shared.tenant_key("cli_y")
        assert (await shared.token(key, fetch, lambda: 0.0)).token == "t-3"
        assert (await shared.token(key, fetch, lambda: 0.0)).token == "t-3"  # from Redis
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if FELL_BACK in m]) == 1
    assert len([m for m in messages if "answers again" in m]) == 1
    assert not any("t-1" in m or "t-3" in m or "s3cret" in m for m in messages)
    assert "t-3" not in repr(Fetched("t-3", 1.0))
    assert repr(shared) == f"SharedTokens(prefix={prefix!r}, via url)"


# --- wiring ------------------------------------------------------------------------------


def test_the_cli_shares_tokens_whenever_a_redis_url_is_given(redis_url: str) -> None:
    base = ["export", "--meetings", "m.csv", "--out", "o.jsonl"]
    env = {"FEISHU_APP_ID": "cli_z", "FEISHU_APP_SECRET": "secret-z"}
    parser = build_parser()
    plain = client_settings(parser.parse_args(base), env).auth
    assert isinstance(plain, AppCredentials)
    assert plain.shared is None
    redis_args = ["--redis-url", redis_url, "--redis-prefix", "p1"]
    shared = client_settings(parser.parse_args([*base, *redis_args]), env).auth
    assert isinstance(shared, AppCredentials)
    assert shared.shared is not None
    assert shared.shared.tenant_key("cli_z") == "p1:token:cli_z:_"
    assert "secret-z" not in repr(shared)
    store_args = [*base, *redis_args, "--app-type", "store", "--tenant-key", "tk"]
    store = client_settings(
        parser.parse_args(store_args), {**env, "FEISHU_APP_TICKET": "ticket-1"}
    ).auth
    assert isinstance(store, StoreAppTokenProvider)
    assert store._app.shared is not None
    assert store._app.shared.app_key("cli_z") == "p1:app-token:cli_z"
