"""Store apps over real sockets: app_ticket pushes to the app's event endpoint (the test's
own server, fed to handle_app_ticket_event), the stale-ticket resend, one token fetch
per cache however many wait, and two tenants exported at once, each at its own budget,
through one client's connection pool."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path

import pytest
from _ratelimit_util import max_in_any_window

from feishu_vc_async import AuthError, Limits, RateLimit, VCClient
from feishu_vc_async._constants import (
    APP_ACCESS_TOKEN_PATH,
    APP_TICKET_RESEND_PATH,
    PARTICIPANT_LIST_PATH,
    STORE_TENANT_TOKEN_PATH,
)
from feishu_vc_async.auth import (
    AppTicketSource,
    FileTicketStore,
    MemoryTicketStore,
    RedisTicketStore,
    StaticTokenProvider,
    StoreAppTokenProvider,
    handle_app_ticket_event,
)
from feishu_vc_async.auth._tickets import TicketCallable
from feishu_vc_async.emulator import AppTickets, Emulator
from feishu_vc_async.errors import AppTicketError
from feishu_vc_async.fanout import MeetingFailure, PageItem
from feishu_vc_async.models import MeetingQuery, Participant
from feishu_vc_async.ratelimit import LimitKey, Pacing, RedisRateLimiter
from tests._gateway import client_limit
from tests._sessions import leaks
from tests._ticket_endpoint import TicketEndpoint

pytestmark = pytest.mark.anyio

_TOKEN_PATHS = (APP_ACCESS_TOKEN_PATH, APP_TICKET_RESEND_PATH, STORE_TENANT_TOKEN_PATH)


def _calls(emu: Emulator) -> list[tuple[str, int | None]]:
    return [(r.path.rsplit("/", 1)[-1], r.code) for r in emu.requests]


async def test_a_stale_ticket_is_recovered_through_a_resend_and_the_push() -> None:
    tickets = MemoryTicketStore()
    async with (
        TicketEndpoint(tickets) as events,
        Emulator(
            meetings=3, seed=4, rate_limit=None, tickets=AppTickets(ticket_callback_url=events.url)
        ) as emu,
    ):
        app = emu.add_store_app(tenants=1)
        events.app_id = app.app_id
        await tickets.put(emu.app_ticket(app.app_id))
        emu.rotate_app_ticket(app.app_id)  # what the client holds is stale now, unpushed
        (key,) = app.tenant_keys
        truth = emu.tenant(key)
        provider = StoreAppTokenProvider(
            app.app_id, app.app_secret, tickets, tenant_key=key, ticket_wait=5
        )
        async with VCClient(provider, base_url=emu.base_url) as client:
            people = [p async for p in client.participants(truth.meetings[0])]
        assert people == truth.participants(truth.meetings[0])
        assert _calls(emu) == [
            ("app_access_token", 10012),
            ("resend", 0),
            ("app_access_token", 0),
            ("tenant_access_token", 0),
            *[("participant_list", 0)]
            * len([r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]),
        ]
        assert events.pushes == 1
        assert await tickets.get() == emu.app_ticket(app.app_id)
        assert client.limit_key == LimitKey("vc/v1/participant_list", app.app_id, key)
        assert leaks(emu, [repr(provider), repr(client), repr(tickets)], app.app_secret) == []


def _no_ticket() -> None:
    return None


@pytest.mark.parametrize("kind", ["memory", "file", "callable", "yours"])
async def test_no_ticket_and_no_push_is_a_clear_error_after_the_wait(
    tmp_path: Path, kind: str
) -> None:
    """The message says where the ticket was looked for in words, never an object's repr
    (it once read ``FileTicketStore('/path') has no app_ticket``)."""

    class Yours:
        async def get(self) -> str | None:
            return None

    sources: dict[str, tuple[AppTicketSource | TicketCallable, str]] = {
        "memory": (MemoryTicketStore(), "this process's memory"),
        "file": (FileTicketStore(tmp_path / "absent"), f"the file {tmp_path / 'absent'}"),
        "callable": (_no_ticket, "what _no_ticket() returns"),
        "yours": (Yours(), "your ticket source"),
    }
    tickets, place = sources[kind]
    async with Emulator(meetings=1, seed=4, rate_limit=None) as emu:  # pushes go nowhere
        app = emu.add_store_app(tenants=1)
        provider = StoreAppTokenProvider(
            app.app_id, app.app_secret, tickets, ticket_wait=0.2
        ).for_tenant(app.tenant_keys[0])
        async with VCClient(provider, base_url=emu.base_url) as client:
            with pytest.raises(AppTicketError) as c:
                await client.participant_list(emu.tenant(app.tenant_keys[0]).meetings[0])
        assert str(c.value).startswith(
            f"there is no app_ticket in {place}, and none came within 0.2 s of a resend "
            "request: the store app needs a fresh app_ticket"
        )
        assert "event callback" in str(c.value)
        assert not re.search(r"[A-Z][a-z]+(Ticket|Store|Source)", str(c.value))
        assert _calls(emu) == [("resend", 0)]


@pytest.mark.parametrize("content", ["", "\n", "  \t\n\n"])
async def test_an_empty_ticket_file_is_an_app_ticket_error_before_any_request(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "app_ticket"
    path.write_text(content)
    async with Emulator(meetings=1, seed=4, rate_limit=None) as emu:
        app = emu.add_store_app(tenants=1)
        (key,) = app.tenant_keys
        provider = StoreAppTokenProvider(
            app.app_id, app.app_secret, FileTicketStore(path), ticket_wait=0.2
        )
        async with VCClient(provider.for_tenant(key), base_url=emu.base_url) as client:
            with pytest.raises(AppTicketError) as caught:
                await client.participant_list(emu.tenant(key).meetings[0])
        assert str(caught.value).startswith(
            f"the app_ticket file {path} is empty (it should hold the store app's current "
            "app_ticket and nothing else): the store app needs a fresh app_ticket"
        )
        assert (caught.value.code, caught.value.http_status) == (0, 0)
        assert emu.requests == []  # a resend would not fill a file put() never empties


async def test_one_fetch_per_cache_however_many_wait_and_an_expired_app_token_renewed() -> None:
    tickets = MemoryTicketStore()
    async with (
        TicketEndpoint(tickets) as events,
        Emulator(
            meetings=3, seed=4, rate_limit=None, tickets=AppTickets(ticket_callback_url=events.url)
        ) as emu,
    ):
        app = emu.add_store_app(tenants=3)
        await tickets.put(emu.app_ticket(app.app_id))
        root = StoreAppTokenProvider(app.app_id, app.app_secret, tickets)
        a, b, c = app.tenant_keys
        async with VCClient(
            root,
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            views = [client.for_tenant(a), client.for_tenant(b)]
            queries = {k: emu.tenant(k).meetings[0] for k in (a, b, c)}
            await asyncio.gather(
                *(
                    v.participant_list(queries[k])
                    for v, k in zip(views, (a, b), strict=True)
                    for _ in range(25)
                )
            )
            paths = [r.path for r in emu.requests]
            assert paths.count(APP_ACCESS_TOKEN_PATH) == 1
            assert paths.count(STORE_TENANT_TOKEN_PATH) == 2
            assert client.stats.token_fetches == 3
            emu.revoke_token(await root.app_access_token(client))  # ended early
            await client.for_tenant(c).participant_list(queries[c])
            with pytest.raises(ValueError, match="for_tenant"):
                await client.participant_list(queries[a])  # the root has no tenant
        assert _calls(emu)[-4:] == [
            ("tenant_access_token", 99991664),
            ("app_access_token", 0),
            ("tenant_access_token", 0),
            ("participant_list", 0),
        ]
        tokens = {r.token for r in emu.requests if r.path == PARTICIPANT_LIST_PATH}
        assert tokens == {emu.tenant_token(app.app_id, tenant_key=k) for k in (a, b, c)}


@pytest.mark.slow
async def test_two_tenants_exported_at_once_each_at_its_own_full_budget() -> None:
    rate = RateLimit(100, 3.0)  # scaled from 100/min; every tenant has its own
    tickets = MemoryTicketStore()
    async with (
        TicketEndpoint(tickets) as events,
        Emulator(
            meetings=100,
            seed=5,
            rate_limit=rate,
            tickets=AppTickets(ticket_callback_url=events.url),
        ) as emu,
    ):
        app = emu.add_store_app(tenants=2)
        # Made before the run: generating a tenant's data on the emulator's (and this
        # test's) event loop mid-run would hold requests back and bunch their arrivals.
        truths = {
            k: {q: emu.tenant(k).participants(q) for q in emu.tenant(k).meetings}
            for k in app.tenant_keys
        }
        provider = StoreAppTokenProvider(app.app_id, app.app_secret, tickets, ticket_wait=5)
        paced = client_limit(rate)  # a little under the gateway: tests/_gateway.py
        async with VCClient(
            provider,
            base_url=emu.base_url,
            limits=Limits(participant_list=paced),
        ) as c:

            async def export(key: str) -> dict[MeetingQuery, list[Participant]]:
                got: dict[MeetingQuery, list[Participant]] = {}
                view = c.for_tenant(key)
                assert view.session is c.session  # one connection pool
                async with view.fan_out(emu.tenant(key).meetings) as results:
                    async for item in results:
                        assert not isinstance(item, MeetingFailure), item
                        assert isinstance(item, PageItem)
                        got.setdefault(item.query, []).extend(item.participants)
                return got

            exported = await asyncio.gather(*(export(k) for k in app.tenant_keys))
        assert events.pushes == 1  # the first ticket, asked for by the provider
        for key, got in zip(app.tenant_keys, exported, strict=True):
            assert got == truths[key]
        assert [r for r in emu.requests if r.status == 429] == []
        lists = [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
        peaks = []
        for key in app.tenant_keys:
            token = emu.tenant_token(app.app_id, tenant_key=key)
            mine = [r for r in lists if r.token == token]
            assert len(mine) >= 140  # more than a period's worth: the budget is the bound
            peaks.append(max_in_any_window([r.time for r in mine], rate.period))
        # Each near its own budget (what its pacing allows in a gateway period), never
        # over the gateway's; together twice what one bucket allows.
        pacing = Pacing.of(paced)
        allowed = pacing.burst + rate.period / pacing.interval
        assert all(0.9 * allowed <= p <= rate.requests for p in peaks), (peaks, allowed)
        assert emu.max_in_window(rate.period) > rate.requests


async def test_a_client_view_per_tenant_shares_the_pool_not_the_bucket() -> None:
    provider = StoreAppTokenProvider("cli_store", "s3cret", MemoryTicketStore("tk"))
    client = VCClient(provider, base_url="http://127.0.0.1:9")
    a, b = client.for_tenant("tenant-a"), client.for_tenant("tenant-b")
    assert (a.limit_key.tenant, b.limit_key.tenant) == ("tenant-a", "tenant-b")
    assert a.limit_key.identity == b.limit_key.identity == "cli_store"
    assert "tenant='tenant-a'" in repr(a)
    assert not a.is_open
    limiter = RedisRateLimiter("redis://127.0.0.1:6379/15", RateLimit(20, 1.0))  # no I/O
    try:
        assert limiter.redis_keys(a.limit_key) != limiter.redis_keys(b.limit_key)
    finally:
        await limiter.aclose()
    async with client:
        assert a.is_open
        assert a.session is client.session
        assert a.stats is client.stats
        assert a.limiter is client.limiter is not None
        with pytest.raises(RuntimeError, match="tenant view"):
            async with a:
                pass
        await a.aclose()  # owns nothing
        assert client.is_open
    with pytest.raises(TypeError, match="no tenants"):
        VCClient(StaticTokenProvider("t-x")).for_tenant("k")
    with pytest.raises(ValueError, match="tenant_key"):
        client.for_tenant("")


async def test_handle_app_ticket_event_stores_only_app_tickets(tmp_path: Path) -> None:
    store = FileTicketStore(tmp_path / "ticket")
    event = {
        "type": "event_callback",
        "event": {"app_id": "cli_a", "app_ticket": "tk-1", "type": "app_ticket"},
    }
    assert await handle_app_ticket_event(event, store, app_id="cli_a")
    assert await store.get() == "tk-1"
    assert stat.S_IMODE((tmp_path / "ticket").stat().st_mode) == 0o600
    raw = (
        b'{"type":"event_callback","event":'
        b'{"app_id":"cli_a","app_ticket":"tk-2","type":"app_ticket"}}'
    )
    assert await handle_app_ticket_event(raw, store)
    assert await store.get() == "tk-2"
    other = {"type": "event_callback", "event": {"type": "app_open", "app_id": "cli_a"}}
    assert not await handle_app_ticket_event(other, store)
    assert not await handle_app_ticket_event({"type": "url_verification"}, store)
    for bad, message in [
        ({**event, "event": {**event["event"], "app_ticket": ""}}, "app_ticket is missing"),
        (b"not json", "not JSON"),
        ({"encrypt": "..."}, "encrypted"),
        ({**event, "event": {**event["event"], "app_id": "cli_b"}}, "of app 'cli_b'"),
    ]:
        with pytest.raises(ValueError, match=message):
            await handle_app_ticket_event(bad, store, app_id="cli_a")  # type: ignore[arg-type]
    assert await store.get() == "tk-2"
    assert await FileTicketStore(tmp_path / "none").get() is None


@pytest.mark.redis
async def test_redis_ticket_store_round_trip(redis_url: str) -> None:
    store = RedisTicketStore(redis_url, f"feishu_vc_test:ticket:{os.getpid()}")
    assert await store.get() is None
    await store.put("tk-redis")
    assert await store.get() == "tk-redis"
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.delete(store.key)
    finally:
        await client.aclose()


async def test_a_callable_ticket_source_and_refused_credentials() -> None:
    async with Emulator(meetings=1, seed=4, rate_limit=None) as emu:
        app = emu.add_store_app(tenants=1)
        calls = []

        async def current() -> str:
            calls.append(1)
            return emu.app_ticket(app.app_id)

        provider = StoreAppTokenProvider(
            app.app_id, app.app_secret, current, tenant_key=app.tenant_keys[0]
        )
        async with VCClient(provider, base_url=emu.base_url) as client:
            await client.participant_list(emu.tenant(app.tenant_keys[0]).meetings[0])
        assert calls == [1]
        wrong = StoreAppTokenProvider(
            app.app_id, "wrong-secret", current, tenant_key=app.tenant_keys[0]
        )
        async with VCClient(wrong, base_url=emu.base_url) as client:
            with pytest.raises(AuthError) as caught:
                await client.participant_list(emu.tenant(app.tenant_keys[0]).meetings[0])
        assert caught.value.code == 10014
        assert "wrong-secret" not in str(caught.value)
