"""Every answer of the platform becomes its typed error.

The error table is checked on the pure mapping (``_answers.read_answer``), with no
server; a few cases go end to end over a real socket (the scripted server answers
exactly what each needs; the client sends with a caller-held token, no rate limiter and
no retries, so each case is one request), and so do the transport failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _virtual_time import SteerableLoop
from multidict import CIMultiDict, CIMultiDictProxy

from feishu_vc_async import (
    APIError,
    AuthError,
    DecodeError,
    FeishuError,
    InternalServerError,
    Limits,
    MeetingQuery,
    NotFoundError,
    NotSupportedError,
    ParameterError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    Retries,
    Timeouts,
    TransportError,
    VCClient,
)
from feishu_vc_async._answers import RawResponse, read_answer
from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async._endpoints import PARTICIPANT_LIST, TENANT_TOKEN, Endpoint
from tests._scripted_server import LIST, Reply, ScriptedServer, error, page, until

pytestmark = pytest.mark.anyio

TOKEN = "t-secret-tenant-token-0123456789"
NOW = int(time.time())
QUERY = MeetingQuery(meeting_no="123456789", meeting_start_time=NOW - 3600, meeting_end_time=NOW)


@contextlib.asynccontextmanager
async def scripted(**client_kw: Any) -> AsyncIterator[tuple[ScriptedServer, VCClient]]:
    async with ScriptedServer() as server:
        kw: dict[str, Any] = {
            "limits": Limits(participant_list=None),
            "retries": Retries(max_retries=0),
        }
        kw.update(client_kw)
        async with VCClient(TOKEN, base_url=server.base_url, **kw) as client:
            yield server, client
        assert not server.unexpected


def _mapped(reply: Reply, endpoint: Endpoint[object] = PARTICIPANT_LIST) -> FeishuError:
    """What ``reply`` becomes (the pure mapping, no server): the typed error it raises."""
    raw = RawResponse(reply.status, CIMultiDictProxy(CIMultiDict(reply.headers)), reply.payload())
    with pytest.raises(FeishuError) as caught:
        read_answer(endpoint, raw, (TOKEN,))
    err = caught.value
    assert TOKEN not in str(err)
    assert TOKEN not in repr(err)
    return err


# The reference page's error table: (HTTP status, code, class).
SPEC_TABLE = [
    (500, 121001, InternalServerError),
    (400, 121002, NotSupportedError),
    (400, 121003, ParameterError),
    (400, 126003, ParameterError),
    (400, 126004, ParameterError),
    (400, 126005, ParameterError),
    (400, 126006, ParameterError),
    (400, 126007, ParameterError),
    (400, 126009, NotFoundError),
    (400, 126015, ParameterError),
    (404, 121004, NotFoundError),
    (403, 121005, PermissionDeniedError),
]

# platform.md: auth, permission and rate codes (status varies; 400 is common).
PLATFORM_TABLE = [
    (400, 99991661, AuthError),
    (401, 99991663, AuthError),
    (400, 99991664, AuthError),
    (400, 99991668, AuthError),
    (400, 99991671, AuthError),
    (403, 99991672, PermissionDeniedError),
    (400, 99991677, AuthError),
    (403, 99991679, PermissionDeniedError),
    (429, 99991400, RateLimitedError),
    (400, 99991400, RateLimitedError),
]


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    SPEC_TABLE + PLATFORM_TABLE,
    ids=[f"{c}-{s}" for s, c, _ in SPEC_TABLE + PLATFORM_TABLE],
)
def test_code_maps_to_class_with_status_code_and_header_log_id(
    status: int, code: int, cls: type[APIError]
) -> None:
    log_id = f"2025{code}ABCDEF"
    err = _mapped(
        Reply(status=status, json=error(code, f"msg {code}"), headers={"X-Tt-Logid": log_id})
    )
    assert type(err) is cls
    assert isinstance(err, APIError)
    assert (err.http_status, err.code, err.msg, err.log_id) == (status, code, f"msg {code}", log_id)
    assert (err.method, err.path) == ("GET", PARTICIPANT_LIST_PATH)
    text = str(err)
    assert str(code) in text
    assert str(status) in text
    assert log_id in text
    assert err.retryable == (cls in (InternalServerError, RateLimitedError))


async def test_an_answer_over_a_real_socket_is_mapped_the_same() -> None:
    """End to end, once: the scripted server's answer reaches the same mapping."""
    async with scripted() as (server, client):
        server.script(
            LIST,
            Reply(status=404, json=error(121004, "data not exist"), headers={"X-Tt-Logid": "L1"}),
        )
        with pytest.raises(NotFoundError) as caught:
            await client.participant_list(QUERY)
        err = caught.value
        assert (err.http_status, err.code, err.log_id) == (404, 121004, "L1")
        assert err.msg == "data not exist"
        assert len(server.list_requests()) == 1
        assert client.stats.errors == 1


@pytest.mark.parametrize(("status", "code", "cls"), SPEC_TABLE[:4] + PLATFORM_TABLE[1:3])
def test_log_id_from_the_body_when_the_header_is_missing(
    status: int, code: int, cls: type[APIError]
) -> None:
    err = _mapped(Reply(status=status, json=error(code, "x", log_id="body-log-7")))
    assert type(err) is cls
    assert isinstance(err, APIError)
    assert err.log_id == "body-log-7"


def test_header_log_id_wins_over_the_body() -> None:
    err = _mapped(
        Reply(
            status=400,
            json=error(121003, "x", log_id="from-body"),
            headers={"X-Tt-Logid": "from-header"},
        )
    )
    assert isinstance(err, APIError)
    assert err.log_id == "from-header"


async def test_rate_limited_carries_reset_and_limit_headers() -> None:
    async with scripted() as (server, client):
        server.script(
            LIST,
            Reply(
                status=429,
                json=error(99991400, "request trigger frequency limit"),
                headers={"x-ogw-ratelimit-reset": "0.75", "x-ogw-ratelimit-limit": "100"},
            ),
        )
        with pytest.raises(RateLimitedError) as caught:
            await client.participant_list(QUERY)
        err = caught.value
        assert err.reset_seconds == 0.75
        assert err.limit == 100
        assert "reset_seconds=0.75" in str(err)
        assert client.stats.rate_limited == 1


def test_unknown_code_is_a_plain_api_error_with_everything_known() -> None:
    err = _mapped(
        Reply(status=418, json=error(7654321, "new thing", log_id="b"), headers={"X-Tt-Logid": "h"})
    )
    assert type(err) is APIError
    assert (err.http_status, err.code, err.msg, err.log_id) == (418, 7654321, "new thing", "h")
    assert (err.method, err.path) == ("GET", PARTICIPANT_LIST_PATH)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is APIError
    assert str(clone) == str(err)


def test_an_unknown_code_of_a_token_endpoint_is_an_auth_error() -> None:
    err = _mapped(Reply(status=400, json=error(10014, "app secret invalid")), TENANT_TOKEN)
    assert type(err) is AuthError
    assert (err.method, err.path, err.code) == ("POST", TENANT_TOKEN.path, 10014)


def test_an_http_429_with_an_unknown_code_is_still_rate_limited() -> None:
    err = _mapped(
        Reply(status=429, json=error(4242, "slow down"), headers={"x-ogw-ratelimit-reset": "2"})
    )
    assert type(err) is RateLimitedError
    assert (err.http_status, err.code, err.reset_seconds) == (429, 4242, 2.0)


def test_unknown_code_on_a_5xx_is_an_internal_server_error() -> None:
    err = _mapped(Reply(status=503, json=error(555, "busy")))
    assert type(err) is InternalServerError
    assert isinstance(err, APIError)
    assert err.code == 555


def test_code_zero_on_an_http_error_status_is_not_a_page() -> None:
    err = _mapped(Reply(status=500, json=page([])))
    assert isinstance(err, InternalServerError)
    assert err.http_status == 500


# --- not an API answer ---------------------------------------------------------------


def test_html_502_page_is_a_decode_error_with_status_and_snippet() -> None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    err = _mapped(
        Reply(status=502, body=html, headers={"Content-Type": "text/html", "X-Tt-Logid": "gw-1"})
    )
    assert type(err) is DecodeError
    assert err.http_status == 502
    assert err.retryable
    assert err.snippet.startswith("<html><head><title>502 Bad Gateway")
    assert err.log_id == "gw-1"
    assert "HTTP 502" in str(err)
    assert "502 Bad Gateway" in str(err)
    assert err.__cause__ is None or not isinstance(err.__cause__, ValueError)


def test_long_bodies_are_cut_to_a_short_snippet() -> None:
    err = _mapped(Reply(status=503, body="x" * 100_000))
    assert isinstance(err, DecodeError)
    assert len(err.snippet) <= 200
    assert len(str(err)) < 400


@pytest.mark.parametrize(
    ("body", "retryable"),
    [
        (b"", True),
        (b"not json", True),
        (b'{"code": 0, "data": {"participants": [{"participant_name": "cut', True),
        (b'{"code": 0, "data": {"participants": "oops"}}', False),
        (b'{"code": 0, "data": {"participants": [{"audio": "yes"}]}}', False),
        (b'{"code": "zero"}', False),
        (b"[1, 2]", False),
    ],
    ids=[
        "empty",
        "text",
        "cut-short",
        "participants-not-list",
        "bool-as-string",
        "code-string",
        "array",
    ],
)
def test_bodies_that_are_not_the_documented_json_are_decode_errors(
    body: bytes, retryable: bool
) -> None:
    err = _mapped(Reply(status=200, body=body))
    assert type(err) is DecodeError
    assert err.http_status == 200
    assert (err.method, err.path) == ("GET", PARTICIPANT_LIST_PATH)
    # A GET may be asked again when its answer did not arrive whole; a whole document of
    # the wrong shape would only come again.
    assert err.retryable is retryable


def test_a_cut_short_answer_to_a_request_that_must_not_repeat_is_final() -> None:
    once = Endpoint(
        method="POST", path="/open-apis/x/once", decode=TENANT_TOKEN.decode, idempotent=False
    )
    err = _mapped(Reply(status=200, body=b'{"code": 0, "tenant_access_token": "t-ab'), once)
    assert type(err) is DecodeError
    assert not err.retryable


def test_an_error_page_echoing_the_token_never_shows_it() -> None:
    err = _mapped(Reply(status=502, body=f"<p>Authorization: Bearer {TOKEN}</p>"))
    assert isinstance(err, DecodeError)
    assert TOKEN not in err.snippet
    assert "***" in err.snippet


def test_a_cut_short_token_answer_never_shows_the_token() -> None:
    fresh = "t-g1044ghJK7ShXB2EGLxS5p3hWbfECX3PwrLiSX45"  # a token the caller never had
    err = _mapped(
        Reply(status=200, body=f'{{"code":0,"msg":"ok","tenant_access_token":"{fresh[:30]}'),
        TENANT_TOKEN,
    )
    assert isinstance(err, DecodeError)
    assert fresh[:30] not in str(err)
    assert fresh[:30] not in err.snippet


def test_an_error_message_echoing_the_token_never_shows_it() -> None:
    err = _mapped(Reply(status=400, json=error(99991663, f"token {TOKEN} is invalid")))
    assert isinstance(err, AuthError)
    assert TOKEN not in err.msg


# --- transport errors ----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_a_transport_error_from_the_aiohttp_cause() -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    async with VCClient(
        TOKEN,
        base_url=base,
        limits=Limits(participant_list=None),
        retries=Retries(max_retries=0),
    ) as c:
        with pytest.raises(TransportError) as caught:
            await c.participant_list(QUERY)
    err = caught.value
    assert type(err) is TransportError
    assert isinstance(err.__cause__, aiohttp.ClientConnectorError)
    assert (err.method, err.path) == ("GET", PARTICIPANT_LIST_PATH)
    assert "ClientConnectorError" in str(err)
    assert TOKEN not in str(err)
    assert c.stats.errors == 1


async def test_connection_reset_is_a_transport_error_from_the_aiohttp_cause() -> None:
    async with scripted() as (server, client):
        # aiohttp itself re-sends once on a dropped keep-alive connection: drop both.
        server.script(LIST, Reply(drop=True), Reply(drop=True))
        with pytest.raises(TransportError) as caught:
            await client.participant_list(QUERY)
        err = caught.value
        assert type(err) is TransportError
        assert isinstance(err.__cause__, aiohttp.ClientError)
        assert "Disconnected" in str(err) or "Connection" in str(err)


@pytest.mark.steerable_clock
async def test_timeout_is_a_request_timeout_error_from_the_cause() -> None:
    # The server never answers and the test moves the clock past the timeout: no race
    # between the timeout and an answer, and the follow-up has the whole 30 s.
    loop = asyncio.get_running_loop()
    assert isinstance(loop, SteerableLoop)
    async with scripted(timeouts=Timeouts(total=30.0)) as (server, client):
        server.script(LIST, Reply(json=page([]), hang=True))
        call = asyncio.create_task(client.participant_list(QUERY))
        await until(lambda: len(server.list_requests()) == 1)
        assert not call.done()
        # aiohttp rounds a timeout over 5 s up to the next whole second of the clock.
        loop.advance(31.0)
        with pytest.raises(RequestTimeoutError) as caught:
            async with asyncio.timeout(10):  # (not advanced: it only ends a hang)
                await call
        err = caught.value
        assert isinstance(err, TransportError)
        assert isinstance(err.__cause__, TimeoutError)
        assert "timed out" in str(err)
        assert "total 30.0s" in str(err)
        # the client is still usable afterwards
        server.script(LIST, Reply(json=page([{"participant_name": "after"}])))
        result = await client.participant_list(QUERY)
        assert result.participants[0].participant_name == "after"
        await asyncio.sleep(0)
