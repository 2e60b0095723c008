"""Token providers: tenant tokens (single-flight, cached, refreshed), user-token refresh."""

from __future__ import annotations

import asyncio
import time

import pytest

from feishu_vc_async import (
    AppCredentials,
    AuthError,
    DecodeError,
    InternalServerError,
    Limits,
    MeetingQuery,
    Retries,
    StaticTokenProvider,
    TenantTokenProvider,
    TokenProvider,
    UserTokenProvider,
    VCClient,
)
from feishu_vc_async._constants import TENANT_TOKEN_PATH
from feishu_vc_async._endpoints import TENANT_TOKEN
from feishu_vc_async.emulator import Clocks, Emulator
from feishu_vc_async.ratelimit import token_identity
from tests._scripted_server import LIST, TOKEN, Reply, ScriptedServer, error, page

pytestmark = pytest.mark.anyio

APP_ID = "cli_test"
SECRET = "s3cret-app-secret"
NOW = int(time.time())
QUERY = MeetingQuery(meeting_no="123456789", meeting_start_time=NOW - 3600, meeting_end_time=NOW)


def _token_records(emu: Emulator) -> list[object]:
    return [r for r in emu.requests if r.token_request]


async def test_100_concurrent_calls_on_a_cold_cache_make_one_token_request() -> None:
    async with ScriptedServer() as server:
        server.serve_tokens(APP_ID, SECRET, delay=0.1)  # a slow endpoint widens the race
        server.always(LIST, Reply(json=page([{"participant_name": "x"}])))
        async with VCClient(
            AppCredentials(APP_ID, SECRET),
            base_url=server.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            pages = await asyncio.gather(*(client.participant_list(QUERY) for _ in range(100)))
        assert len(pages) == 100
        assert server.token_requests == 1
        assert client.stats.token_fetches == 1
        assert client.stats.requests == 100
        tokens = {r.headers["Authorization"] for r in server.list_requests()}
        assert tokens == {"Bearer t-1"}
        sent = server.requests[0]
        assert sent.path == TOKEN
        assert sent.method == "POST"
        assert sent.headers["Content-Type"].startswith("application/json")


async def test_single_flight_against_the_emulator() -> None:
    async with Emulator(meetings=3, seed=1, rate_limit=None) as emu:
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            query = emu.meetings[0]
            await asyncio.gather(*(client.participant_list(query) for _ in range(100)))
        assert len(_token_records(emu)) == 1


async def test_revoked_tenant_token_is_refetched_once_then_succeeds() -> None:
    async with Emulator(meetings=3, seed=2, rate_limit=None) as emu:
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            query = emu.meetings[0]
            first = await client.participant_list(query, page_size=20)
            emu.revoke_token(emu.tenant_token())
            # twenty callers fail with the same revoked token: one refresh between them
            again = await asyncio.gather(
                *(client.participant_list(query, page_size=20) for _ in range(20))
            )
        assert all(p == first for p in again)
        assert len(_token_records(emu)) == 2
        assert client.stats.token_fetches == 2
        refused = [r for r in emu.requests if r.code == 99991663]
        assert 1 <= len(refused) <= 20
        assert client.stats.errors == 0


async def test_a_token_refused_twice_raises_after_one_refresh() -> None:
    async with ScriptedServer() as server:
        server.serve_tokens(APP_ID, SECRET)
        server.always(LIST, Reply(status=400, json=error(99991663, "invalid", log_id="L1")))
        async with VCClient(
            AppCredentials(APP_ID, SECRET),
            base_url=server.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            with pytest.raises(AuthError) as caught:
                await client.participant_list(QUERY)
        assert caught.value.code == 99991663
        assert caught.value.log_id == "L1"
        assert server.token_requests == 2  # the first, then exactly one fresh one
        assert len(server.list_requests()) == 2
        assert client.stats.retries == 1


async def test_a_callers_tenant_token_is_not_retried() -> None:
    async with ScriptedServer() as server:
        server.always(LIST, Reply(status=400, json=error(99991663, "invalid")))
        async with VCClient(
            "t-held-by-caller",
            base_url=server.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            with pytest.raises(AuthError):
                await client.participant_list(QUERY)
        assert len(server.list_requests()) == 1
        assert server.token_requests == 0


async def test_user_token_refresh_callback_is_called_once() -> None:
    now = [0.0]  # the emulator's clock for token lifetimes, moved by the test
    async with Emulator(
        meetings=3, seed=3, rate_limit=None, clocks=Clocks(monotonic=lambda: now[0])
    ) as emu:
        calls = 0

        async def refresh() -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0)  # concurrent callers queue behind this one
            return emu.add_user_token(expires_in=60)

        short = emu.add_user_token(expires_in=0.3)
        async with VCClient(
            UserTokenProvider(short, refresh),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            query = emu.meetings[0]
            await client.participant_list(query)
            assert calls == 0
            now[0] += 0.4  # the user token expires: 99991677
            pages = await asyncio.gather(*(client.participant_list(query) for _ in range(10)))
        assert calls == 1
        assert len(pages) == 10
        assert client.stats.token_fetches == 1
        assert any(r.code == 99991677 for r in emu.requests)
        assert not _token_records(emu)


async def test_a_revoked_user_token_is_refreshed() -> None:
    async with Emulator(meetings=2, seed=4, rate_limit=None) as emu:
        revoked = emu.add_user_token(expires_in=60)
        fresh = emu.add_user_token(expires_in=60)

        async def refresh() -> str:
            return fresh

        async with VCClient(
            UserTokenProvider(revoked, refresh),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            await client.participant_list(emu.meetings[0])
            emu.revoke_token(revoked)
            page = await client.participant_list(emu.meetings[0])
        assert page.participants
        codes = [r.code for r in emu.requests if not r.token_request]
        assert codes == [0, 99991663, 0]
        assert client.stats.token_fetches == 1


async def test_user_token_refresh_that_does_not_help_raises() -> None:
    async with ScriptedServer() as server:
        server.always(LIST, Reply(status=400, json=error(99991668, "user token invalid")))
        calls = 0

        async def refresh() -> str:
            nonlocal calls
            calls += 1
            return f"u-new-{calls}"

        async with VCClient(
            UserTokenProvider("u-old", refresh),
            base_url=server.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            with pytest.raises(AuthError) as caught:
                await client.participant_list(QUERY)
        assert caught.value.code == 99991668
        assert calls == 1
        sent = [r.headers["Authorization"] for r in server.list_requests()]
        assert sent == ["Bearer u-old", "Bearer u-new-1"]


async def test_a_failing_refresh_callback_is_an_auth_error_without_its_text() -> None:
    async with ScriptedServer() as server:
        server.always(LIST, Reply(status=400, json=error(99991677, "expired")))

        async def refresh() -> str:
            raise RuntimeError("u-leaked-in-message")

        async with VCClient(
            UserTokenProvider("u-old", refresh),
            base_url=server.base_url,
        ) as client:
            with pytest.raises(AuthError) as caught:
                await client.participant_list(QUERY)
        assert "u-leaked-in-message" not in str(caught.value)
        assert "RuntimeError" in str(caught.value)
        assert isinstance(caught.value.__cause__, RuntimeError)


async def test_wrong_app_secret_is_an_auth_error_without_the_secret() -> None:
    async with Emulator(meetings=1, seed=4, rate_limit=None) as emu:
        wrong = "wrong-secret-" + emu.app_secret[:8]
        async with VCClient(
            AppCredentials(emu.app_id, wrong),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            with pytest.raises(AuthError) as caught:
                await client.participant_list(emu.meetings[0])
            err = caught.value
            assert err.code == 10014
            assert err.http_status == 400
            assert err.log_id
            assert (err.method, err.path) == ("POST", TENANT_TOKEN_PATH)
            for text in (str(err), repr(err), repr(client), repr(client.token_provider)):
                assert wrong not in text
                assert emu.app_secret not in text
        assert not [r for r in emu.requests if not r.token_request]  # no API call was sent
        assert len(_token_records(emu)) == 1  # refusals are not retried


async def test_token_endpoint_errors_are_retried_when_transient(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The token endpoint answers 500, then a proxy's 502, then a token: the call succeeds
    through the shared request loop, each retry logged like any other request's."""
    async with ScriptedServer() as server:
        server.script(TOKEN, Reply(status=503, json=error(121001, "busy")))
        server.script(TOKEN, Reply(status=502, body="<html>bad gateway</html>"))
        server.serve_tokens(APP_ID, SECRET)
        server.always(LIST, Reply(json=page([])))
        policy_calls: list[str] = []

        from feishu_vc_async import DefaultRetryPolicy, RetryDecision

        base = DefaultRetryPolicy(initial=0.01)

        def policy(exc: BaseException, attempt: int) -> RetryDecision:
            policy_calls.append(type(exc).__name__)
            return base(exc, attempt)

        async with VCClient(
            AppCredentials(APP_ID, SECRET),
            base_url=server.base_url,
            limits=Limits(participant_list=None),
            retries=Retries(policy=policy),
        ) as client:
            await client.participant_list(QUERY)
        assert policy_calls == ["InternalServerError", "DecodeError"]
        assert server.token_requests == 1
        # One fetch, three requests of the token endpoint through the shared loop.
        assert client.stats.token_fetches == 1
        token_stats = client.stats.endpoint(TENANT_TOKEN.name)
        assert (token_stats.requests, token_stats.retries, token_stats.answers) == (3, 2, 1)
        assert client.stats.requests == 1  # participant_list, once
        retried = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
        assert len(retried) == 2
        assert retried[0].startswith(f"POST {TENANT_TOKEN_PATH}: retry 1/5 in ")
        assert retried[0].endswith("server error (code 121001, HTTP 503)")
        assert retried[1].startswith(f"POST {TENANT_TOKEN_PATH}: retry 2/5 in ")
        assert retried[1].endswith("body is not JSON (HTTP 502)")


async def test_token_endpoint_non_json_without_retries_is_a_decode_error() -> None:
    async with ScriptedServer() as server:
        server.script(TOKEN, Reply(status=200, body="<html>login</html>"))
        async with VCClient(
            AppCredentials(APP_ID, SECRET),
            base_url=server.base_url,
            retries=Retries(max_retries=0),
        ) as client:
            with pytest.raises(DecodeError) as caught:
                await client.participant_list(QUERY)
        assert caught.value.path == TENANT_TOKEN_PATH
        assert "login" in caught.value.snippet


async def test_token_endpoint_5xx_without_retries_stays_retryable_class() -> None:
    async with ScriptedServer() as server:
        server.script(TOKEN, Reply(status=500, json=error(121001, "busy")))
        async with VCClient(
            AppCredentials(APP_ID, SECRET),
            base_url=server.base_url,
            retries=Retries(max_retries=0),
        ) as client:
            with pytest.raises(InternalServerError):
                await client.participant_list(QUERY)


async def test_tenant_token_cached_until_expire_minus_margin() -> None:
    now = [100.0]  # the client's clock, moved by the test
    async with ScriptedServer() as server:
        # expire 2 s: the margin is capped at half the lifetime, so reuse for 1 s
        server.serve_tokens(APP_ID, SECRET, expire=2)
        server.always(LIST, Reply(json=page([])))
        async with VCClient(
            AppCredentials(APP_ID, SECRET),
            base_url=server.base_url,
            limits=Limits(participant_list=None),
            clock=lambda: now[0],
        ) as client:
            await client.participant_list(QUERY)
            now[0] += 0.99
            await client.participant_list(QUERY)
            assert server.token_requests == 1
            now[0] += 0.02
            await client.participant_list(QUERY)
            assert server.token_requests == 2
        sent = [r.headers["Authorization"] for r in server.list_requests()]
        assert sent == ["Bearer t-1", "Bearer t-1", "Bearer t-2"]


async def test_the_emulator_scaled_token_lifetime_is_refreshed_in_time() -> None:
    # (The emulator reports ``expire`` in whole seconds, at least 1: a lifetime under ~2 s
    # would make it overstate what is left of a reissued token.)
    now = [0.0]  # one clock for the emulator's token lifetimes and the client's cache
    async with Emulator(
        meetings=2,
        seed=5,
        rate_limit=None,
        token_lifetime=2.0,
        clocks=Clocks(monotonic=lambda: now[0]),
    ) as emu:
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
            clock=lambda: now[0],
        ) as client:
            for _ in range(13):
                await client.participant_list(emu.meetings[0])
                now[0] += 0.2
        # never sent an expired token: no refusals at all, and the token did rotate
        assert not [r for r in emu.requests if r.code not in (0, None)]
        assert client.stats.retries == 0
        used = {r.token for r in emu.requests if not r.token_request}
        assert len(used) >= 2


def test_providers_satisfy_the_protocol_and_name_their_budget() -> None:
    tenant = TenantTokenProvider(APP_ID, SECRET)
    static = StaticTokenProvider("t-abc")

    async def refresh() -> str:
        return "u-new"

    user = UserTokenProvider("u-abc", refresh)
    for provider in (tenant, static, user):
        assert isinstance(provider, TokenProvider)
    assert tenant.identity == APP_ID
    assert static.identity == token_identity("t-abc")
    assert user.identity == token_identity("u-abc")
    assert static.refresh_codes == frozenset()
    assert 99991663 in tenant.refresh_codes
    assert 99991668 in user.refresh_codes
    for provider, secret in ((tenant, SECRET), (static, "t-abc"), (user, "u-abc")):
        assert secret not in repr(provider)


@pytest.mark.parametrize(
    ("token", "message"),
    [("", "non-empty"), ("Bearer t-x", "whitespace"), ("t-x\n", "whitespace"), (None, "string")],
)
def test_bad_tokens_are_refused_without_echo(token: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        StaticTokenProvider(token)  # type: ignore[arg-type]
    if token:
        assert str(token).strip() not in str(caught.value)


async def test_a_custom_provider_is_used_with_its_identity() -> None:
    class Rotating:
        identity = "custom-budget"
        tenant = ""
        refresh_codes = frozenset({99991663})

        def __init__(self) -> None:
            self.n = 0
            self.invalidated: list[str] = []

        async def token(self, session_ctx: object) -> str:
            return f"t-rot-{self.n}"

        def invalidate(self, token: str) -> None:
            self.invalidated.append(token)
            self.n += 1

    provider = Rotating()
    async with ScriptedServer() as server:
        server.script(LIST, Reply(status=400, json=error(99991663, "x")))
        server.always(LIST, Reply(json=page([])))
        async with VCClient(
            provider,
            base_url=server.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            await client.participant_list(QUERY)
        assert client.limit_key.identity == "custom-budget"
        assert provider.invalidated == ["t-rot-0"]
        sent = [r.headers["Authorization"] for r in server.list_requests()]
        assert sent == ["Bearer t-rot-0", "Bearer t-rot-1"]


def test_a_provider_without_tenant_is_refused_naming_auth() -> None:
    """0.2 dropped the one-release shim for providers written before ``tenant``."""

    class Old:
        identity = "old-budget"
        refresh_codes: frozenset[int] = frozenset()

        async def token(self, sender: object) -> str:
            return "t-old"

        def invalidate(self, token: str) -> None:
            pass

    with pytest.raises(TypeError, match="auth: must be"):
        VCClient(Old(), base_url="http://127.0.0.1:9")  # type: ignore[arg-type]
