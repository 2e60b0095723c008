"""VCClient: construction, lifecycle, pagination, retries, cancellation, secrecy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from feishu_vc_async import (
    FEISHU_BASE_URL,
    LARK_BASE_URL,
    APIError,
    AppCredentials,
    DefaultRetryPolicy,
    InternalServerError,
    InvalidQueryError,
    LimitKey,
    Limits,
    MeetingQuery,
    PagingError,
    ParameterError,
    RateLimit,
    Retries,
    RetryDecision,
    Timeouts,
    TransportError,
    VCClient,
)
from feishu_vc_async._constants import API_PARTICIPANT_LIST, MAX_PAGES
from feishu_vc_async.ratelimit import token_identity
from tests._scripted_server import LIST, Reply, ScriptedServer, error, page, until

pytestmark = pytest.mark.anyio

TOKEN = "t-caller-token-9f8e7d6c5b4a"
NOW = int(time.time())
QUERY = MeetingQuery(meeting_no="123456789", meeting_start_time=NOW - 3600, meeting_end_time=NOW)


def _people(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"participant_name": f"{prefix}{i}"} for i in range(n)]


@contextlib.asynccontextmanager
async def scripted(**client_kw: Any) -> AsyncIterator[tuple[ScriptedServer, VCClient]]:
    async with ScriptedServer() as server:
        kw: dict[str, Any] = {"limits": Limits(participant_list=None)}
        kw.update(client_kw)
        async with VCClient(TOKEN, base_url=server.base_url, **kw) as client:
            yield server, client
        assert not server.unexpected


# --- construction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: AppCredentials("", "s"), "app_id"),
        (lambda: AppCredentials("cli_a", ""), "app_secret"),
        (lambda: VCClient(""), "access_token"),
        (lambda: VCClient("t-x", base_url="ftp://open.feishu.cn"), "base_url"),
        (lambda: VCClient("t-x", base_url="open.feishu.cn"), "base_url"),
        (lambda: VCClient("t-x", base_url=""), "base_url"),
        (lambda: VCClient("t-x", base_url="https://h/?a=1"), "base_url"),
        (lambda: VCClient("t-x", base_url="https://u:pw@h"), "base_url"),
        (lambda: Retries(max_retries=-1), "max_retries"),
        (lambda: Timeouts(total=0), "timeouts.total"),
        (lambda: Timeouts(connect=-1.0), "timeouts.connect"),
        (lambda: VCClient("t-x", max_answer_bytes=0), "max_answer_bytes"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(
    make: Callable[[], object], argument: str
) -> None:
    with pytest.raises(ValueError, match=argument) as caught:
        make()
    assert argument in str(caught.value)
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: VCClient(object()), "auth"),  # type: ignore[arg-type]
        (lambda: VCClient("t-x", limits=RateLimit(100, 60)), "limits"),  # type: ignore[arg-type]
        (lambda: Limits(participant_list="100/60s"), "limits.participant_list"),  # type: ignore[arg-type]
        (lambda: Limits(meeting_list=object()), "limits.meeting_list"),  # type: ignore[arg-type]
        (lambda: VCClient("t-x", session=object()), "session"),  # type: ignore[arg-type]
        (lambda: Retries(policy=3), "retries.policy"),  # type: ignore[arg-type]
        (lambda: VCClient("t-x", timeouts=10), "timeouts"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_name_the_argument(make: Callable[[], object], argument: str) -> None:
    with pytest.raises(TypeError, match=argument):
        make()


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (FEISHU_BASE_URL, FEISHU_BASE_URL),
        (LARK_BASE_URL, LARK_BASE_URL),
        ("lark", LARK_BASE_URL),
        ("Feishu", FEISHU_BASE_URL),
        ("https://open.larksuite.com/", LARK_BASE_URL),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("https://proxy.example/feishu/", "https://proxy.example/feishu"),
    ],
)
def test_base_url_presets_and_any_url(base_url: str, expected: str) -> None:
    assert VCClient("t-x", base_url=base_url).base_url == expected


def test_defaults_and_limit_key() -> None:
    client = VCClient(AppCredentials("cli_a", "very-secret"))
    assert client.base_url == FEISHU_BASE_URL
    assert client.limit_key == LimitKey(api=API_PARTICIPANT_LIST, identity="cli_a", tenant="")
    assert client.rate_limit is not None
    assert (client.rate_limit.requests, client.rate_limit.period) == (100, 60.0)
    held = VCClient(TOKEN)
    assert held.limit_key.identity == token_identity(TOKEN)


def test_repr_shows_base_url_and_app_id_but_no_secret() -> None:
    client = VCClient(AppCredentials("cli_a", "very-secret"), base_url="lark")
    text = repr(client)
    assert "cli_a" in text
    assert LARK_BASE_URL in text
    assert "very-secret" not in text
    held = repr(VCClient(TOKEN))
    assert TOKEN not in held
    assert token_identity(TOKEN) in held


# --- lifecycle -------------------------------------------------------------------------


async def test_using_the_client_outside_async_with_is_a_clear_error() -> None:
    client = VCClient(TOKEN, limits=Limits(participant_list=None))
    with pytest.raises(RuntimeError, match="async with"):
        await client.participant_list(QUERY)
    with pytest.raises(RuntimeError, match="async with"):
        async for _ in client.pages(QUERY):
            pass
    assert client.session is None


async def test_enter_twice_is_refused_and_reentry_after_exit_works() -> None:
    async with ScriptedServer() as server:
        server.always(LIST, Reply(json=page([])))
        client = VCClient(TOKEN, base_url=server.base_url, limits=Limits(participant_list=None))
        async with client:
            with pytest.raises(RuntimeError, match="already open"):
                await client.__aenter__()
            first_session = client.session
            await client.participant_list(QUERY)
        assert first_session is not None
        assert first_session.closed
        assert not client.is_open
        async with client:
            await client.participant_list(QUERY)
        assert client.stats.requests == 2


async def test_a_callers_session_is_used_and_never_closed() -> None:
    async with ScriptedServer() as server, aiohttp.ClientSession() as session:
        server.always(LIST, Reply(json=page(_people("p", 2))))
        async with VCClient(
            TOKEN,
            base_url=server.base_url,
            limits=Limits(participant_list=None),
            session=session,
        ) as client:
            assert client.session is session
            result = await client.participant_list(QUERY)
        assert len(result.participants) == 2
        assert not session.closed
        # the backend keeps using its session after the client is gone
        async with session.get(server.base_url + LIST) as resp:
            assert resp.status == 200


async def test_rate_limit_builds_a_shared_limiter_released_on_exit() -> None:
    async with ScriptedServer() as server:
        server.always(LIST, Reply(json=page([])))
        async with VCClient(TOKEN, base_url=server.base_url) as client:
            assert client.limiter is not None
            await client.participant_list(QUERY)
        assert client.limiter is None


# --- one page, many pages --------------------------------------------------------------


async def test_participant_list_sends_the_query_and_paging() -> None:
    async with scripted() as (server, client):
        server.script(LIST, Reply(json=page(_people("a", 3), "next-1", True)))
        result = await client.participant_list(QUERY, page_size=50, page_token="tok-0")
        assert [p.participant_name for p in result.participants] == ["a0", "a1", "a2"]
        assert (result.page_token, result.has_more) == ("next-1", True)
        (sent,) = server.list_requests()
        assert sent.query == {**QUERY.to_params(), "page_size": "50", "page_token": "tok-0"}
        assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
        assert client.stats.requests == 1
        assert client.stats.pages == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ("bad_query", "meeting_no"),
        ("page_size_small", "page_size"),
        ("page_size_big", "page_size"),
        ("pages_bad_query", "meeting_no"),
        ("participants_bad_size", "page_size"),
    ],
)
async def test_invalid_input_raises_before_any_request(call: str, field: str) -> None:
    bad = MeetingQuery(meeting_no="12345", meeting_start_time=NOW - 60, meeting_end_time=NOW)
    async with scripted() as (server, client):

        async def run() -> None:
            if call == "bad_query":
                await client.participant_list(bad)
            elif call == "page_size_small":
                await client.participant_list(QUERY, page_size=10)
            elif call == "page_size_big":
                await client.participant_list(QUERY, page_size=101)
            elif call == "pages_bad_query":
                client.pages(bad)  # raises on the call, before iteration
            else:
                client.participants(QUERY, page_size=0)

        with pytest.raises(InvalidQueryError) as caught:
            await run()
        assert caught.value.field == field
        assert server.requests == []
        assert client.stats.requests == 0


async def test_pages_stop_when_has_more_is_false() -> None:
    async with scripted() as (server, client):
        server.script(
            LIST,
            Reply(json=page(_people("a", 2), "p2", True)),
            Reply(json=page(_people("b", 2), "p3", True)),
            # a token on the last page must not be followed
            Reply(json=page(_people("c", 1), "p4", False)),
        )
        names = [p.participant_name async for p in client.participants(QUERY)]
        assert names == ["a0", "a1", "b0", "b1", "c0"]
        tokens = [r.query.get("page_token") for r in server.list_requests()]
        assert tokens == [None, "p2", "p3"]
        assert all(r.query["page_size"] == "100" for r in server.list_requests())


@pytest.mark.parametrize("last_token", ["", None], ids=["empty-token", "missing-token"])
async def test_pages_stop_on_a_missing_or_empty_token_while_has_more(
    last_token: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    async with scripted() as (server, client):
        server.script(
            LIST,
            Reply(json=page(_people("a", 2), "p2", True)),
            Reply(json=page(_people("b", 1), last_token, True)),
        )
        with caplog.at_level(logging.WARNING, logger="feishu_vc_async"):
            pages = [p async for p in client.pages(QUERY)]
        assert len(pages) == 2
        assert len(server.list_requests()) == 2
        assert "page token is missing" in caplog.text


async def test_a_repeated_token_is_a_paging_error_not_an_end() -> None:
    """A server loop would pass off a partial (or repeated) listing as the whole one."""
    async with scripted() as (server, client):
        server.script(
            LIST,
            Reply(json=page(_people("a", 1), "p2", True)),
            Reply(json=page(_people("b", 1), "p3", True)),
            Reply(json=page(_people("c", 1), "p2", True)),  # back to p2: a server loop
        )
        server.always(LIST, Reply(json=page(_people("loop", 1), "p2", True)))
        names: list[str] = []

        async def read() -> None:
            async for person in client.participants(QUERY):
                names.append(person.participant_name)

        with pytest.raises(PagingError, match="repeated a page token after page 3"):
            await read()
        assert names == ["a0", "b0"]  # the page that repeated is not handed out
        assert len(server.list_requests()) == 3


async def test_the_starting_token_counts_as_seen() -> None:
    async with scripted() as (server, client):
        server.script(LIST, Reply(json=page(_people("x", 1), "start", True)))
        with pytest.raises(PagingError, match="repeated"):
            _ = [p async for p in client.pages(QUERY, page_token="start")]
        assert server.list_requests()[0].query["page_token"] == "start"


async def test_new_tokens_without_end_stop_at_the_page_bound() -> None:
    async with scripted() as (server, client):
        fresh = iter(range(10_000))
        server.always(
            LIST, lambda _request: Reply(json=page(_people("r", 1), f"t{next(fresh)}", True))
        )
        with pytest.raises(PagingError, match="still had more after 1000 pages"):
            _ = [p async for p in client.pages(QUERY)]
        assert len(server.list_requests()) == MAX_PAGES == 1000


async def test_breaking_out_of_participants_sends_no_further_request() -> None:
    async with scripted() as (server, client):
        server.always(LIST, Reply(json=page(_people("a", 5), "more", True)))
        async for person in client.participants(QUERY):
            assert person.participant_name == "a0"
            break
        await asyncio.sleep(0)  # nothing runs on in the background to send another
        assert len(server.list_requests()) == 1


@contextlib.contextmanager
def _async_generators_started() -> Iterator[list[AsyncGenerator[Any, Any]]]:
    """Every async generator first iterated inside the block (asyncio's own hooks stay)."""
    started: list[AsyncGenerator[Any, Any]] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def record(agen: AsyncGenerator[Any, Any]) -> None:
        started.append(agen)
        if firstiter is not None:
            firstiter(agen)

    sys.set_asyncgen_hooks(firstiter=record, finalizer=finalizer)
    try:
        yield started
    finally:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)


async def test_stopping_early_leaves_nothing_for_the_garbage_collector() -> None:
    async with scripted() as (server, client):
        server.always(LIST, Reply(json=page(_people("a", 5), "more", True)))
        with _async_generators_started() as started:
            async for _ in client.participants(QUERY):
                break
            async for _ in client.pages(QUERY):
                break
        # Nothing is left suspended for the collector to finalize later, out of context.
        assert [g for g in started if g.ag_frame is not None] == []
        # Explicit ends work too, and an ended iterator sends nothing more.
        pages = client.pages(QUERY)
        async with pages:
            await anext(pages)
        with pytest.raises(StopAsyncIteration):
            await anext(pages)
        people = client.participants(QUERY)
        await anext(people)
        await people.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(people)
        assert len(server.list_requests()) == 4


# --- retries over sockets --------------------------------------------------------------


async def test_transient_failures_are_retried_then_succeed() -> None:
    retries = Retries(policy=DefaultRetryPolicy(initial=0.01))
    async with scripted(retries=retries) as (server, client):
        server.script(
            LIST,
            Reply(status=500, json=error(121001, "internal")),
            Reply(status=502, body="<html>bad gateway</html>"),
            Reply(drop=True),
            Reply(drop=True),
            Reply(json=page(_people("ok", 1))),
        )
        result = await client.participant_list(QUERY)
        assert result.participants[0].participant_name == "ok0"
        assert client.stats.retries == 3
        assert client.stats.errors == 0


async def test_rate_limited_answers_wait_the_reset_header() -> None:
    waits: list[float] = []
    default = DefaultRetryPolicy()

    def policy(error: BaseException, attempt: int) -> RetryDecision:
        decision = default(error, attempt)
        waits.append(decision.wait)
        return decision

    async with scripted(retries=Retries(policy=policy)) as (server, client):
        server.script(
            LIST,
            Reply(
                status=429,
                json=error(99991400, "request trigger frequency limit"),
                headers={"x-ogw-ratelimit-reset": "0.4", "x-ogw-ratelimit-limit": "100"},
            ),
            Reply(
                status=400,  # older gateways answer 400 with the same code
                json=error(99991400, "request trigger frequency limit"),
                headers={"x-ogw-ratelimit-reset": "0.3"},
            ),
            Reply(json=page(_people("ok", 1))),
        )
        started = time.monotonic()
        await client.participant_list(QUERY)
        elapsed = time.monotonic() - started
        # The reset of each answer, plus at most 10 % jitter; and the loop waited them out.
        assert 0.4 <= waits[0] <= 0.44
        assert 0.3 <= waits[1] <= 0.33
        assert elapsed >= sum(waits)
        assert client.stats.rate_limited == 2
        assert client.stats.retries == 2
        assert client.stats.requests == 3


async def test_retries_stop_after_max_retries() -> None:
    fast = DefaultRetryPolicy(initial=0.01)
    async with scripted(retries=Retries(max_retries=2, policy=fast)) as (server, client):
        server.always(LIST, Reply(status=500, json=error(121001, "internal")))
        with pytest.raises(InternalServerError):
            await client.participant_list(QUERY)
        assert len(server.list_requests()) == 3
        stats = client.stats
        assert (stats.requests, stats.retries, stats.errors) == (3, 2, 1)


async def test_max_retries_zero_sends_once() -> None:
    async with scripted(retries=Retries(max_retries=0)) as (server, client):
        server.always(LIST, Reply(status=500, json=error(121001, "internal")))
        with pytest.raises(InternalServerError):
            await client.participant_list(QUERY)
        assert len(server.list_requests()) == 1


async def test_permanent_errors_are_not_retried() -> None:
    async with scripted() as (server, client):
        server.always(LIST, Reply(status=400, json=error(126009, "no meeting")))
        with pytest.raises(APIError) as caught:
            await client.participant_list(QUERY)
        assert caught.value.code == 126009
        assert len(server.list_requests()) == 1
        assert client.stats.errors == 1


class CountingLimiter:
    """A RateLimiter that records what the client asks of it."""

    rate = RateLimit(1000, 60.0)

    def __init__(self) -> None:
        self.acquired: list[LimitKey] = []
        self.reported: list[tuple[LimitKey, float | None]] = []
        self.closed = False

    async def acquire(self, key: LimitKey, *, continuing: bool = False) -> None:
        self.acquired.append(key)

    async def report_rate_limited(self, key: LimitKey, reset_seconds: float | None) -> None:
        self.reported.append((key, reset_seconds))

    async def aclose(self) -> None:
        self.closed = True


async def test_every_attempt_takes_a_limiter_slot_and_429s_are_reported() -> None:
    limiter = CountingLimiter()
    async with scripted(limits=Limits(participant_list=limiter)) as (server, client):
        server.script(
            LIST,
            Reply(
                status=429,
                json=error(99991400, "limit"),
                headers={"x-ogw-ratelimit-reset": "0.05"},
            ),
            Reply(status=500, json=error(121001, "x")),
            Reply(json=page([])),
        )
        await client.participant_list(QUERY)
        assert client.limiter is limiter
    assert limiter.acquired == [client.limit_key] * 3
    assert limiter.reported == [(client.limit_key, 0.05)]
    assert not limiter.closed  # the caller's limiter is the caller's to close


# --- cancellation ----------------------------------------------------------------------


async def test_cancelling_a_call_mid_flight_leaves_the_client_usable() -> None:
    async with ScriptedServer() as server:
        server.script(LIST, Reply(json=page(_people("slow", 1)), hang=True))
        server.always(LIST, Reply(json=page(_people("fast", 1))))
        async with VCClient(
            TOKEN,
            base_url=server.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            task = asyncio.create_task(client.participant_list(QUERY))
            await until(lambda: len(server.list_requests()) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            result = await client.participant_list(QUERY)
            assert result.participants[0].participant_name == "fast0"
            assert client.stats.errors == 0
            session = client.session
        assert session is not None
        assert session.closed


async def test_cancelling_during_a_token_fetch_releases_the_lock() -> None:
    async with ScriptedServer() as server:
        server.serve_tokens("cli_x", "sec-x", hang_first=True)
        server.always(LIST, Reply(json=page([])))
        async with VCClient(
            AppCredentials("cli_x", "sec-x"),
            base_url=server.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            task = asyncio.create_task(client.participant_list(QUERY))
            await until(lambda: server.token_requests == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # the lock was released: the next call fetches and succeeds
            await client.participant_list(QUERY)
        # the cancelled fetch reached the server; the second one is the one used
        assert server.token_requests == 2
        assert [r.headers["Authorization"] for r in server.list_requests()] == ["Bearer t-2"]


# --- secrets and logs ------------------------------------------------------------------


async def test_no_secret_or_token_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app_secret = "APP-SECRET-4b1d9c7e"
    async with ScriptedServer() as server:
        server.serve_tokens("cli_log", app_secret)
        server.script(
            LIST,
            Reply(status=400, json=error(99991663, "invalid token")),  # → fresh token
            Reply(
                status=429, json=error(99991400, "limit"), headers={"x-ogw-ratelimit-reset": "0"}
            ),
            Reply(status=500, json=error(121001, "internal"), headers={"X-Tt-Logid": "LOG-500"}),
            Reply(json=page(_people("a", 1), "p2", True)),
            Reply(status=400, json=error(126009, "no such meeting")),
        )
        errors: list[BaseException] = []
        with caplog.at_level(logging.DEBUG):
            async with VCClient(
                AppCredentials("cli_log", app_secret),
                base_url=server.base_url,
                limits=Limits(participant_list=None),
                retries=Retries(policy=DefaultRetryPolicy(initial=0.01)),
            ) as client:
                try:
                    async for _ in client.participants(QUERY):
                        pass
                except ParameterError as exc:
                    raise AssertionError("126009 is NotFound, not a parameter error") from exc
                except APIError as exc:
                    errors.append(exc)
                client_repr = repr(client)
        tokens = {
            r.headers["Authorization"].removeprefix("Bearer ") for r in server.list_requests()
        }
        assert tokens >= {"t-1", "t-2"}
        assert len(errors) == 1
        # every attempt got its debug line, every retry its warning
        attempts = [r for r in caplog.records if "attempt=" in r.getMessage()]
        assert len([r for r in attempts if "participant_list" in r.getMessage()]) == 5
        # The token requests go through the same loop, and are logged like any other.
        assert len([r for r in attempts if "tenant_access_token" in r.getMessage()]) == 2
        assert "log_id=LOG-500" in caplog.text
        retries = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(retries) == 3
        texts = [caplog.text, client_repr, str(errors[0]), repr(errors[0])]
        texts += [r.getMessage() for r in caplog.records]
        for text in texts:
            assert app_secret not in text
            for token in ("t-1", "t-2"):
                assert f"Bearer {token}" not in text
                assert f"'{token}'" not in text
                assert f"={token}" not in text


async def test_debug_line_per_attempt_has_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    async with scripted() as (server, client):
        server.script(LIST, Reply(json=page([]), headers={"X-Tt-Logid": "LID-1"}))
        with caplog.at_level(logging.DEBUG, logger="feishu_vc_async"):
            await client.participant_list(QUERY, page_token="secretish-token")
        (line,) = [r.getMessage() for r in caplog.records if "attempt=" in r.getMessage()]
        for part in ("GET", LIST, "status=200", "code=0", "log_id=LID-1", "ms", "attempt=1"):
            assert part in line
        assert "secretish-token" not in line  # path only, no query string
        assert TOKEN not in line


# --- stats -----------------------------------------------------------------------------


async def test_stats_count_requests_and_recent_rate() -> None:
    now = [50.0]  # the client's clock, moved by the test
    async with scripted(clock=lambda: now[0]) as (server, client):
        server.always(LIST, Reply(json=page([])))
        await asyncio.gather(*(client.participant_list(QUERY) for _ in range(30)))
        stats = client.stats
        assert (stats.requests, stats.pages, stats.retries, stats.errors) == (30, 30, 0, 0)
        assert stats.recent_rate(10.0) == pytest.approx(3.0)
        now[0] += 0.3
        assert stats.recent_rate(0.1) == 0.0
        assert stats.recent_rate(1.0) == pytest.approx(30.0)
        with pytest.raises(ValueError, match="window"):
            stats.recent_rate(0)
        assert stats.as_dict()["requests"] == 30


async def test_transport_error_after_retries_counts_as_an_error() -> None:
    fast = DefaultRetryPolicy(initial=0.01)
    async with scripted(retries=Retries(max_retries=1, policy=fast)) as (server, client):
        server.always(LIST, Reply(drop=True))
        with pytest.raises(TransportError):
            await client.participant_list(QUERY)
        assert client.stats.errors == 1
        assert client.stats.retries == 1


def test_the_public_surface() -> None:
    import feishu_vc_async

    for name in feishu_vc_async.__all__:
        assert getattr(feishu_vc_async, name) is not None, name
    for name in (
        "VCClient",
        "MeetingQuery",
        "Participant",
        "ParticipantPage",
        "RateLimit",
        "AcceptStatus",
        "WebinarRole",
        "MeetingStatus",
        "UserIdType",
        "FeishuError",
        "APIError",
        "InvalidQueryError",
        "FEISHU_BASE_URL",
        "LARK_BASE_URL",
        "TokenProvider",
        "ClientStats",
        "PageItem",
        "MeetingFailure",
        "Resume",
    ):
        assert name in feishu_vc_async.__all__, name


def test_recent_rate_over_more_sends_than_it_keeps() -> None:
    from feishu_vc_async import ClientStats

    now = [0.0]
    stats = ClientStats(clock=lambda: now[0])
    endpoint = stats.endpoint(API_PARTICIPANT_LIST)
    for _ in range(5000):
        now[0] += 0.001
        endpoint.record_request()
    assert stats.requests == 5000
    # All kept stamps are within the window: the rate is measured over the kept span
    # (4096 sends in 4.095 s), not 4096 / window.
    assert stats.recent_rate(60.0) == pytest.approx(4096 / 4.095)
    assert "requests=5000" in repr(stats)


@pytest.mark.parametrize("rate_limit", [None, RateLimit(1000, 1.0)], ids=["no-limiter", "limiter"])
def test_a_client_used_from_another_event_loop_says_so(rate_limit: RateLimit | None) -> None:
    """The aiohttp session belongs to the loop the client was opened in; from another
    loop the same clear error comes whether a limiter is in the way or not."""
    client = VCClient(
        "t-" + "x" * 20,
        base_url="http://127.0.0.1:1",
        limits=Limits(participant_list=rate_limit),
    )
    query = MeetingQuery(
        meeting_no="123456789", meeting_start_time=1_700_000_000, meeting_end_time=1_700_003_600
    )
    opened_in, other = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        opened_in.run_until_complete(client.__aenter__())
        with pytest.raises(RuntimeError, match="outside the event loop it was opened in") as info:
            other.run_until_complete(client.participant_list(query))
        assert "one client per event loop" in str(info.value)
    finally:
        opened_in.run_until_complete(client.aclose())
        opened_in.close()
        other.close()
