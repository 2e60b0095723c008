"""UserSessionProvider over real sockets against the emulator: refresh before expiry and
on refusal, one refresh per process and across stores sharing a lock, the new refresh
token saved before its access token is used, and the errors that say what to do.

The provider's clock and the emulator's monotonic clock are one fake clock, so a
two-hour token expires without waiting."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import ClassVar

import pytest

from feishu_vc_async import (
    AuthError,
    DefaultRetryPolicy,
    InternalServerError,
    Limits,
    Retries,
    TransportError,
    VCClient,
)
from feishu_vc_async._constants import PARTICIPANT_LIST_PATH, USER_TOKEN_PATH
from feishu_vc_async.auth import (
    FileLock,
    FileSessionStore,
    MemorySessionStore,
    RedisLock,
    SessionEnded,
    UserSession,
    UserSessionProvider,
    default_token_file,
)
from feishu_vc_async.emulator import Clocks, DefaultApp, Emulator, OAuthUser
from feishu_vc_async.errors import (
    DecodeError,
    LoginRequiredError,
    RefreshDisabledError,
    TokenStoreError,
)
from feishu_vc_async.models import MeetingQuery
from tests._login import FakeClock
from tests._scripted_server import LIST, Reply, ScriptedServer, page
from tests._sessions import leaks, refreshes, sign_in, user_token_records

pytestmark = pytest.mark.anyio

FAST_RETRY = DefaultRetryPolicy(initial=0.001, max_backoff=0.01)
QUERY = MeetingQuery(
    meeting_no="123456789", meeting_start_time=1_700_000_000, meeting_end_time=1_700_003_600
)


def _client(emu: Emulator, provider: UserSessionProvider) -> VCClient:
    return VCClient(
        provider,
        base_url=emu.base_url,
        limits=Limits(participant_list=None),
        retries=Retries(policy=FAST_RETRY),
    )


def _list_tokens(emu: Emulator) -> list[str | None]:
    return [r.token for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]


async def test_refreshes_once_when_due_however_many_callers_wait() -> None:
    clock = FakeClock(1_000.0)
    async with Emulator(meetings=3, seed=1, rate_limit=None, clocks=Clocks(monotonic=clock)) as emu:
        first = await sign_in(emu, clock=clock)
        store = MemorySessionStore(first)
        provider = UserSessionProvider(emu.app_id, emu.app_secret, store, clock=clock)
        async with _client(emu, provider) as client:
            await client.participant_list(emu.meetings[0])
            assert refreshes(emu) == 0
            assert provider.tenant == first.tenant_key == emu.tenant_key
            assert client.limit_key.tenant == emu.tenant_key
            clock.now += 7200 - 299  # inside the 300 s margin
            await asyncio.gather(*(client.participant_list(emu.meetings[0]) for _ in range(50)))
            assert client.stats.token_fetches == 1
        assert refreshes(emu) == 1
        fresh = store.session
        assert fresh is not None
        assert fresh.access_token != first.access_token
        assert (fresh.open_id, fresh.name) == (first.open_id, first.name)  # kept across refresh
        assert _list_tokens(emu) == [first.access_token] + [fresh.access_token] * 50
        assert emu.live_refresh_tokens() == [fresh.refresh_token]
        assert leaks(emu, [repr(provider), repr(store), repr(fresh), str(fresh)]) == []


async def test_a_refused_token_is_refreshed_and_the_request_repeated() -> None:
    provider_clock, server_clock = FakeClock(0.0), FakeClock(0.0)
    async with Emulator(
        meetings=3, seed=1, rate_limit=None, clocks=Clocks(monotonic=server_clock)
    ) as emu:
        first = await sign_in(emu, clock=provider_clock)
        provider = UserSessionProvider(
            emu.app_id, emu.app_secret, MemorySessionStore(first), clock=provider_clock
        )
        server_clock.now += 7300  # expired at the server; the provider's clock says fresh
        async with _client(emu, provider) as client:
            await client.participant_list(emu.meetings[0])
        codes = [r.code for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
        assert codes == [99991677, 0]
        assert refreshes(emu) == 1


async def test_a_session_another_process_refreshed_is_used_not_refreshed_again(
    tmp_path: Path,
) -> None:
    clock = FakeClock(0.0)
    path = tmp_path / "tokens.json"
    async with Emulator(meetings=3, seed=1, rate_limit=None, clocks=Clocks(monotonic=clock)) as emu:
        first = await sign_in(emu, clock=clock)
        FileSessionStore(path, base_url=emu.base_url, app_id=emu.app_id).write(first)
        # Two stores on one file: what two processes have. Each provider caches its own.
        a, b = (
            UserSessionProvider(
                emu.app_id,
                emu.app_secret,
                FileSessionStore(path, base_url=emu.base_url, app_id=emu.app_id),
                clock=clock,
            )
            for _ in range(2)
        )
        async with _client(emu, a) as ca, _client(emu, b) as cb:
            await ca.participant_list(emu.meetings[0])
            await cb.participant_list(emu.meetings[0])
            clock.now += 7000
            await ca.participant_list(emu.meetings[0])  # a refreshes
            await cb.participant_list(emu.meetings[0])  # b finds a's session in the file
            clock.now += 7000
            # Due again for both at once: one of them refreshes, the other reads the file.
            await asyncio.gather(
                *(c.participant_list(emu.meetings[0]) for c in (ca, cb) for _ in range(10))
            )
        assert refreshes(emu) == 2
        assert [r.code for r in user_token_records(emu)] == [0, 0, 0]
        stored = FileSessionStore(path, base_url=emu.base_url, app_id=emu.app_id).read()
        assert stored is not None
        assert emu.live_refresh_tokens() == [stored.refresh_token]
        assert a.session == b.session == stored


async def test_the_new_session_is_saved_before_its_access_token_is_used() -> None:
    clock = FakeClock(0.0)
    async with Emulator(meetings=3, seed=1, rate_limit=None, clocks=Clocks(monotonic=clock)) as emu:

        class Watching(MemorySessionStore):
            saved_unused: ClassVar[list[bool]] = []

            async def save(self, session: UserSession) -> None:
                self.saved_unused.append(session.access_token not in _list_tokens(emu))
                await super().save(session)

        store = Watching(await sign_in(emu, clock=clock))
        provider = UserSessionProvider(emu.app_id, emu.app_secret, store, clock=clock)
        async with _client(emu, provider) as client:
            for _ in range(3):
                clock.now += 7000
                await client.participant_list(emu.meetings[0])
        assert store.saved_unused == [True, True, True]

        class Failing(MemorySessionStore):
            async def save(self, session: UserSession) -> None:
                raise TokenStoreError("disk full")

        clock.now += 7000
        provider = UserSessionProvider(
            emu.app_id, emu.app_secret, Failing(store.session), clock=clock
        )
        before = len(_list_tokens(emu))
        async with _client(emu, provider) as client:
            with pytest.raises(TokenStoreError, match="disk full"):
                await client.participant_list(emu.meetings[0])
        assert len(_list_tokens(emu)) == before  # the unsaved token was never used


@pytest.mark.parametrize("how", ["replayed", "revoked"])
async def test_a_dead_refresh_token_says_log_in_again(how: str) -> None:
    clock = FakeClock(0.0)
    async with Emulator(meetings=3, seed=1, rate_limit=None, clocks=Clocks(monotonic=clock)) as emu:
        first = await sign_in(emu, clock=clock)
        clock.now += 7000
        if how == "replayed":  # someone else used this refresh token already
            other = UserSessionProvider(
                emu.app_id, emu.app_secret, MemorySessionStore(first), clock=clock
            )
            async with _client(emu, other) as client:
                await client.participant_list(emu.meetings[0])
        else:
            assert first.refresh_token is not None
            emu.revoke_token(first.refresh_token)
        store = MemorySessionStore(first)
        provider = UserSessionProvider(emu.app_id, emu.app_secret, store, clock=clock)
        async with _client(emu, provider) as client:
            with pytest.raises(LoginRequiredError) as caught:
                await client.participant_list(emu.meetings[0])
        expected = 20073 if how == "replayed" else 20064
        assert caught.value.code == expected
        # The store keeps that the session is over, when and why (for `auth status`).
        assert store.ended == SessionEnded(at=clock.now, code=expected)
        await store.save(first)  # storing a session (a new login) clears it
        assert store.ended is None
        assert "run `feishu-vc auth login`" in str(caught.value)
        assert caught.value.log_id
        assert isinstance(caught.value, AuthError)
        assert leaks(emu, [str(caught.value), repr(caught.value)]) == []


async def test_no_stored_session_says_log_in() -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        provider = UserSessionProvider(emu.app_id, emu.app_secret, MemorySessionStore())
        async with _client(emu, provider) as client:
            with pytest.raises(
                LoginRequiredError, match=r"no user session .* `feishu-vc auth login`"
            ):
                await client.participant_list(emu.meetings[0])
        assert emu.requests == []


async def test_a_session_without_refresh_token_says_log_in_when_due() -> None:
    clock = FakeClock(0.0)
    async with Emulator(meetings=1, seed=1, rate_limit=None, clocks=Clocks(monotonic=clock)) as emu:
        session = await sign_in(emu, clock=clock, scope="vc:room:readonly")
        assert session.refresh_token is None
        store = MemorySessionStore(session)
        provider = UserSessionProvider(emu.app_id, emu.app_secret, store, clock=clock)
        async with _client(emu, provider) as client:
            await client.participant_list(emu.meetings[0])
            clock.now += 7000
            with pytest.raises(LoginRequiredError, match="offline_access"):
                await client.participant_list(emu.meetings[0])
        assert store.ended is None  # decided here, not refused by the platform


async def test_the_refresh_switch_off_names_the_setting() -> None:
    clock = FakeClock(0.0)
    async with Emulator(
        meetings=1,
        seed=1,
        rate_limit=None,
        clocks=Clocks(monotonic=clock),
        app=DefaultApp(refresh_user_token=False),
    ) as emu:
        provider = UserSessionProvider(
            emu.app_id,
            emu.app_secret,
            MemorySessionStore(await sign_in(emu, clock=clock)),
            clock=clock,
        )
        clock.now += 7000
        async with _client(emu, provider) as client:
            with pytest.raises(RefreshDisabledError, match='"refresh user_access_token"') as c:
                await client.participant_list(emu.meetings[0])
        assert c.value.code == 20074
        assert "Security Settings" in str(c.value)


async def test_server_trouble_at_the_token_endpoint_is_retried() -> None:
    clock = FakeClock(0.0)
    async with Emulator(meetings=1, seed=1, rate_limit=None, clocks=Clocks(monotonic=clock)) as emu:
        provider = UserSessionProvider(
            emu.app_id,
            emu.app_secret,
            MemorySessionStore(await sign_in(emu, clock=clock)),
            clock=clock,
        )
        emu.fail_token_endpoint("user_token", 1, code=20050)
        emu.fail_token_endpoint("user_token", 1, code=20072)
        emu.fail_token_endpoint("user_token", 1)  # an nginx page
        clock.now += 7000
        async with _client(emu, provider) as client:
            await client.participant_list(emu.meetings[0])
        assert [r.code for r in user_token_records(emu)] == [0, 20050, 20072, None, 0]
        assert client.stats.endpoint("authen/v2/oauth/token").retries == 3


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(drop=True), TransportError),
        (Reply(body='{"code":0,"access_token":"u-0123456789abcdef'), DecodeError),
    ],
)
async def test_a_refresh_cut_short_is_not_sent_again(reply: Reply, error: type[Exception]) -> None:
    """The refresh token may be spent already: sending it again could only end the
    session with a confusing 20073."""
    clock = FakeClock(0.0)
    session = UserSession(
        app_id="cli_x",
        access_token="u-" + "a" * 40,
        refresh_token="ur-" + "b" * 40,
        expires_in=7200,
        refresh_expires_in=86400,
        obtained_at=-7000.0,
    )
    async with ScriptedServer() as server:
        server.script(USER_TOKEN_PATH, reply)
        server.always(LIST, Reply(json=page([])))
        provider = UserSessionProvider(
            "cli_x", "secret-x", MemorySessionStore(session), clock=clock
        )
        async with VCClient(
            provider,
            base_url=server.base_url,
            limits=Limits(participant_list=None),
            retries=Retries(policy=FAST_RETRY),
        ) as client:
            with pytest.raises(error) as caught:
                await client.participant_list(QUERY)
        assert not caught.value.retryable  # type: ignore[attr-defined]
        assert [r.path for r in server.requests] == [USER_TOKEN_PATH]
        assert "b" * 40 not in str(caught.value)


# --- the file store and the locks -----------------------------------------------------


async def test_file_store_is_owner_only_keyed_per_host_app_user_and_never_shows_a_token(
    tmp_path: Path,
) -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        alice = await sign_in(emu)
        emu.user = OAuthUser(name="Bob")
        bob = await sign_in(emu)
    path = tmp_path / "cfg" / "tokens.json"
    store = FileSessionStore(path, base_url="http://h1", app_id=emu.app_id)
    async with store.lock():
        store.write(alice)
    FileSessionStore(path, base_url="http://h2", app_id=emu.app_id).write(alice)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cfg" / "tokens.json.lock").stat().st_mode) == 0o600
    assert store.read() == alice
    FileSessionStore(path, base_url="http://h1", app_id=emu.app_id).write(bob)
    with pytest.raises(TokenStoreError, match="2 users") as caught:
        FileSessionStore(path, base_url="http://h1", app_id=emu.app_id).read()
    assert "Bob" in str(caught.value)
    by_id = FileSessionStore(path, base_url="http://h1", app_id=emu.app_id, open_id=bob.open_id)
    assert by_id.read() == bob
    assert by_id.forget() == bob
    assert FileSessionStore(path, base_url="http://h1", app_id=emu.app_id).read() == alice
    texts = [repr(store), repr(by_id), str(caught.value), repr(alice)]
    assert not [t for t in (alice.access_token, bob.access_token) if any(t in x for x in texts)]

    # A refusal marks the entry whose session was refused, and no other.
    ended = SessionEnded(at=1_800_000_000.0, code=20064)
    await store.record_end(bob, ended)  # not the session h1 holds for alice
    entry = store.entry()
    assert entry is not None
    assert entry.ended is None
    await store.record_end(alice, ended)
    entry = store.entry()
    assert entry is not None
    assert entry.ended == ended
    assert str(ended) == "refused by the platform at 2027-01-15 08:00:00 UTC (code 20064)"
    other_host = FileSessionStore(path, base_url="http://h2", app_id=emu.app_id).entry()
    assert other_host is not None
    assert other_host.ended is None
    async with store.lock():
        store.write(alice)
    entry = store.entry()
    assert entry is not None
    assert entry.ended is None

    path.write_text('{"version": 1, "sessions": {"k": {"base_url": "x", "session": 7}}}')
    with pytest.raises(TokenStoreError, match="not a feishu-vc token file") as bad:
        store.read()
    assert "session" not in str(bad.value).split(str(path))[-1]


def test_the_default_token_file_follows_xdg(tmp_path: Path) -> None:
    assert default_token_file({"FEISHU_VC_TOKEN_FILE": str(tmp_path / "t.json")}) == (
        tmp_path / "t.json"
    )
    assert default_token_file({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "feishu-vc" / "tokens.json"
    )
    assert default_token_file({"XDG_CONFIG_HOME": "relative"}) == (
        Path.home() / ".config" / "feishu-vc" / "tokens.json"
    )


async def test_file_lock_excludes_other_holders_and_gives_up_after_its_timeout(
    tmp_path: Path,
) -> None:
    lock_path = tmp_path / "x.lock"
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with FileLock(lock_path).lock():
            held.set()
            await release.wait()

    task = asyncio.get_running_loop().create_task(holder())
    await held.wait()
    with pytest.raises(TokenStoreError, match="stayed locked"):
        async with FileLock(lock_path, timeout=0.1).lock():
            pass
    release.set()
    await task
    async with FileLock(lock_path, timeout=0.1).lock():
        pass


@pytest.mark.redis
async def test_redis_lock_is_exclusive_renewed_and_released_only_by_its_holder(
    redis_url: str,
) -> None:
    import redis.asyncio as aioredis

    key = f"feishu_vc_test:lock:{os.getpid()}"
    order: list[str] = []

    client = aioredis.Redis.from_url(redis_url)
    ttl = 1.0  # renewed every third of it: only a stall of 2/3 s would let it lapse

    async def redis_now() -> float:
        seconds, micros = await client.time()
        return seconds + micros / 1e6

    async def hold(name: str, outlive_ttl: bool) -> None:
        async with RedisLock(redis_url, key, ttl=ttl, timeout=30).lock():
            order.append(f"{name}+")
            # Held past its ttl by Redis's own clock (the one that would expire it):
            # renewal keeps it, and the other holder still waits.
            since = await redis_now()
            while outlive_ttl and await redis_now() - since < 1.2 * ttl:
                assert await client.get(key) is not None
                await asyncio.sleep(0.05)
            order.append(f"{name}-")

    try:
        await asyncio.gather(hold("a", True), hold("b", False))
        assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
        assert await client.get(key) is None  # released
        await client.set(key, "someone-else", px=5000)
        with pytest.raises(TokenStoreError, match="stayed held"):
            async with RedisLock(client, key, timeout=0.1).lock():
                pass
        assert await client.get(key) == b"someone-else"  # a waiter never deletes it
        await client.delete(key)
    finally:
        await client.aclose()
    with pytest.raises(TokenStoreError, match="cannot be used"):
        async with RedisLock("redis://127.0.0.1:1/0", key, timeout=1).lock():
            pass


@pytest.mark.redis
async def test_stores_on_two_hosts_share_a_refresh_through_a_redis_lock(
    tmp_path: Path, redis_url: str
) -> None:
    clock = FakeClock(0.0)
    key = f"feishu_vc_test:session:{os.getpid()}"
    async with Emulator(meetings=1, seed=1, rate_limit=None, clocks=Clocks(monotonic=clock)) as emu:
        first = await sign_in(emu, clock=clock)
        # One shared store (a network file, a database): a lock every host honours.
        shared = MemorySessionStore(first)

        class OnAnotherHost(MemorySessionStore):
            async def load(self) -> UserSession | None:
                return await shared.load()

            async def save(self, session: UserSession) -> None:
                await shared.save(session)

        providers = [
            UserSessionProvider(
                emu.app_id,
                emu.app_secret,
                OnAnotherHost(),
                lock=RedisLock(redis_url, key),
                clock=clock,
            )
            for _ in range(3)
        ]
        clock.now += 7000
        clients = [_client(emu, p) for p in providers]
        async with clients[0], clients[1], clients[2]:
            await asyncio.gather(
                *(c.participant_list(emu.meetings[0]) for c in clients for _ in range(5))
            )
        assert refreshes(emu) == 1
        assert [r.code for r in user_token_records(emu)] == [0, 0]


@pytest.mark.parametrize(
    ("code", "status", "error", "retryable", "says"),
    [
        (20037, 400, LoginRequiredError, False, "run `feishu-vc auth login`"),
        (20064, 400, LoginRequiredError, False, "run `feishu-vc auth login`"),
        (20073, 400, LoginRequiredError, False, "run `feishu-vc auth login`"),
        (20026, 400, LoginRequiredError, False, "run `feishu-vc auth login`"),
        (20004, 400, LoginRequiredError, False, "run `feishu-vc auth login`"),
        (20074, 400, RefreshDisabledError, False, '"refresh user_access_token"'),
        (20050, 500, InternalServerError, True, "code=20050"),
        (20072, 503, InternalServerError, True, "code=20072"),
        (20049, 400, AuthError, False, "invalid_grant: PKCE"),
    ],
)
def test_v2_refusals_map_to_errors_that_say_what_to_do(
    code: int, status: int, error: type[AuthError], retryable: bool, says: str
) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from feishu_vc_async._answers import RawResponse, read_answer
    from feishu_vc_async._endpoints import USER_TOKEN

    refresh = "ur-" + "c" * 40
    body = (
        f'{{"code":{code},"error":"invalid_grant","error_description":"PKCE or {refresh}"}}'
    ).encode()
    headers = CIMultiDictProxy(CIMultiDict({"X-Tt-Logid": "log-1"}))
    with pytest.raises(error) as caught:
        read_answer(USER_TOKEN, RawResponse(status, headers, body), (refresh,))
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert says in str(caught.value)
    assert caught.value.log_id == "log-1"
    assert refresh not in str(caught.value)
