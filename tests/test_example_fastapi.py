"""examples/fastapi_backend.py under a real uvicorn server on 127.0.0.1, asked over HTTP
(aiohttp), against the embedded emulator.

The streaming test puts a gate in front of the emulator: every participant_list request
for a page after the first waits at it until the test has read the stream's first line,
so "the first line arrives before the last page is answered" is shown by the order of
events, never by timing (a server that buffered the whole answer would never send the
line, and the test would fail at its deadline).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.events import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MeetingEnded,
    encrypt,
    ended_envelope,
    signature,
)
from feishu_vc_async.models import MeetingQuery, Participant
from feishu_vc_async.ratelimit import RateLimit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN, KEY = "v-token-" + secrets.token_hex(4), "enc-key-" + secrets.token_hex(8)
DEADLINE = 60  # seconds: only a failure waits this long


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    import importlib

    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("fastapi_backend")


@asynccontextmanager
async def served(
    backend: ModuleType, base_url: str, emu: Emulator, **kw: Any
) -> AsyncIterator[Any]:
    """The example's app under uvicorn (lifespan on, an ephemeral port), then stopped."""
    settings: dict[str, Any] = {
        "base_url": base_url,
        "app_id": emu.app_id,
        "app_secret": emu.app_secret,
        "verification_token": TOKEN,
        "encrypt_key": KEY,
        "rate_limit": RateLimit(1000, 1.0),  # scaled: the emulator's gateway is off here
        **kw,
    }
    app = backend.make_app(**settings)
    server, task, url = await backend.serve(app, "127.0.0.1", 0)
    assert server.config.lifespan == "on"
    assert url == f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    app.state.url = url
    try:
        yield app
    finally:
        server.should_exit = True
        with anyio.fail_after(DEADLINE):
            await task


def _params(q: MeetingQuery) -> dict[str, str]:
    return {"start": str(q.meeting_start_time), "end": str(q.meeting_end_time)}


def _as_json(people: list[Participant]) -> Any:
    return msgspec.json.decode(msgspec.json.encode(people))


def _page_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path == PARTICIPANT_LIST_PATH)


async def _get(http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> tuple[int, Any]:
    async with http.get(url, params=params) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_participants_as_json_with_one_client_and_errors_as_statuses(
    backend: ModuleType,
) -> None:
    async with Emulator(meetings=20, seed=3, rate_limit=None) as emu:
        async with served(backend, emu.base_url, emu) as app, aiohttp.ClientSession() as http:
            client = app.state.client
            assert client.is_open  # made by the lifespan, before the first request
            base = app.state.url + "/meetings"
            q = emu.meetings[0]
            # Bad input is the caller's error, answered before any request is sent.
            not_a_time = await _get(
                http, f"{base}/{q.meeting_no}/participants", {"start": "abc", "end": "2"}
            )
            no_end = await _get(http, f"{base}/{q.meeting_no}/participants", {"start": "1"})
            short = await _get(http, f"{base}/12345/participants", {"start": "1", "end": "2"})
            backwards = await _get(
                http, f"{base}/{q.meeting_no}/participants", {"start": "9", "end": "2"}
            )
            stream_bad = await _get(
                http, f"{base}/{q.meeting_no}/participants.ndjson", {"start": "x", "end": "2"}
            )
            assert emu.requests == []  # not even a token: nothing was asked for them

            results: dict[tuple[str, int], tuple[int, Any]] = {}

            async def one(query: MeetingQuery) -> None:
                url = f"{base}/{query.meeting_no}/participants"
                results[query.meeting_no, query.meeting_start_time] = await _get(
                    http, url, _params(query)
                )

            async with anyio.create_task_group() as tg:
                for query in emu.meetings:
                    tg.start_soon(one, query)

            missing_q = MeetingQuery(
                meeting_no="999999999",
                meeting_start_time=q.meeting_start_time,
                meeting_end_time=q.meeting_end_time,
            )
            missing = await _get(http, f"{base}/999999999/participants", _params(missing_q))
            emu.deny_meeting(emu.meetings[1])
            denied = await _get(
                http, f"{base}/{emu.meetings[1].meeting_no}/participants", _params(emu.meetings[1])
            )
            denied_stream = await _get(
                http,
                f"{base}/{emu.meetings[1].meeting_no}/participants.ndjson",
                _params(emu.meetings[1]),
            )
            token_fetches = sum(1 for r in emu.requests if r.token_request)
        assert not client.is_open  # closed by the lifespan as uvicorn stopped
        for query in emu.meetings:
            status, body = results[query.meeting_no, query.meeting_start_time]
            assert status == 200
            assert body == {
                "meeting_no": query.meeting_no,
                "participants": _as_json(emu.participants(query)),
            }
    # One client for every request: one tenant token fetched, not one per request.
    assert token_fetches == 1
    assert not_a_time[0] == no_end[0] == short[0] == backwards[0] == stream_bad[0] == 400
    assert not_a_time[1]["error"].startswith("start: must be unix seconds")
    assert no_end[1]["error"].startswith("end: must be unix seconds")
    assert stream_bad[1]["error"].startswith("start: must be unix seconds")
    assert short[1]["error"].startswith("meeting_no='12345': must be exactly 9 digits")
    assert "meeting_end_time" in backwards[1]["error"]
    assert missing[0] == 404
    assert denied[0] == denied_stream[0] == 403
    assert denied[1]["log_id"]
    assert denied_stream[1] == {"error": "no permission", "log_id": denied_stream[1]["log_id"]}


async def test_a_platform_error_is_502_with_its_code_and_log_id_and_no_secret(
    backend: ModuleType,
) -> None:
    async with Emulator(meetings=3, seed=4, rate_limit=None) as emu:
        wrong = "wrong-secret-" + secrets.token_hex(8)
        async with (
            served(backend, emu.base_url, emu, app_secret=wrong) as app,
            aiohttp.ClientSession() as http,
        ):
            q = emu.meetings[0]
            async with http.get(
                f"{app.state.url}/meetings/{q.meeting_no}/participants", params=_params(q)
            ) as resp:
                status, text = resp.status, await resp.text()
        refused = [r for r in emu.requests if r.token_request]
    assert status == 502
    body = msgspec.json.decode(text)
    assert body["code"] == 10014  # the token endpoint's "wrong secret"
    assert body["log_id"] == refused[-1].log_id
    assert wrong not in text
    assert emu.app_secret not in text


def _gated(emu: Emulator) -> tuple[web.Application, asyncio.Event]:
    """A proxy to the emulator holding every participant_list request for a page after
    the first (one with a ``page_token``) until the gate opens."""
    gate = asyncio.Event()

    async def forward(request: web.Request) -> web.Response:
        if request.path == PARTICIPANT_LIST_PATH and "page_token" in request.query:
            await gate.wait()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type")
        }
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                emu.base_url + request.path_qs,
                headers=headers,
                data=await request.read(),
            ) as answer,
        ):
            body = await answer.read()
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() in ("content-type", "x-tt-logid")
            }
            return web.Response(status=answer.status, body=body, headers=kept)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app, gate


async def test_ndjson_streams_each_page_before_the_next_is_answered(backend: ModuleType) -> None:
    data = MeetingData(webinars=1, webinar_size=350)  # 4 pages of 100 for the webinar
    async with Emulator(meetings=20, seed=5, rate_limit=None, data=data) as emu:
        webinar = max(emu.meetings, key=lambda q: len(emu.participants(q)))
        want = _as_json(emu.participants(webinar))
        pages = -(-len(want) // 100)
        assert pages >= 3
        proxy, gate = _gated(emu)
        runner = web.AppRunner(proxy)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        proxy_url = "http://{}:{}".format(*runner.addresses[0][:2])
        try:
            async with served(backend, proxy_url, emu) as app, aiohttp.ClientSession() as http:
                url = f"{app.state.url}/meetings/{webinar.meeting_no}/participants.ndjson"
                async with AsyncExitStack() as stack:
                    try:  # the answer's start too: a server that buffers never sends it
                        with anyio.fail_after(DEADLINE):
                            resp = await stack.enter_async_context(
                                http.get(url, params=_params(webinar))
                            )
                            first = await resp.content.readline()
                        # The first line is here; the emulator has answered one page
                        # only, the second is held at the gate until now.
                        answered_at_first_line = _page_requests(emu)
                    finally:
                        gate.set()  # a failure too: let the server finish and stop
                    assert resp.status == 200
                    assert resp.content_type == "application/x-ndjson"
                    rest = await resp.read()
                lines = [first, *rest.splitlines(keepends=True)]

                # A page that fails once the stream has begun: the status is sent, so
                # the stream ends with an error line (the 404 the purge answers).
                gate.clear()
                emu.reset_log()
                async with http.get(url, params=_params(webinar)) as resp:
                    status = resp.status
                    with anyio.fail_after(DEADLINE):
                        first_again = await resp.content.readline()
                    emu.purge_meeting(webinar)
                    gate.set()
                    tail = (await resp.read()).splitlines()
        finally:
            await runner.cleanup()
    assert answered_at_first_line == 1
    assert all(line.endswith(b"\n") for line in lines)
    assert [msgspec.json.decode(line) for line in lines] == want
    assert first_again == first
    assert status == 200
    *more, last = tail
    assert [msgspec.json.decode(line) for line in more] == want[1:100]
    error = msgspec.json.decode(last)
    assert error["code"] == 121004
    assert error["log_id"]


def _push(
    event: MeetingEnded, *, key: str = KEY, forge: bool = False
) -> tuple[bytes, dict[str, str]]:
    body = msgspec.json.encode({"encrypt": encrypt(key, ended_envelope(event, token=TOKEN))})
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    signed = signature(timestamp, nonce, key, body)
    if forge:
        signed = signature(timestamp, nonce, "not-the-key", body)
    headers = {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signed,
        "Content-Type": "application/json",
    }
    return body, headers


async def test_the_mounted_webhook_takes_a_signed_event_and_refuses_a_forged_one(
    backend: ModuleType,
) -> None:
    async with Emulator(meetings=3, seed=6, rate_limit=None) as emu:
        q = emu.meetings[0]
        event = MeetingEnded(
            event_id=secrets.token_hex(16),
            tenant_key=emu.tenant_key,
            app_id=emu.app_id,
            meeting_id="7000000000000000042",
            meeting_no=q.meeting_no,
            start_time=q.meeting_start_time,
            end_time=q.meeting_end_time,
            topic="weekly",
            create_time_ms=q.meeting_end_time * 1000 + 250,
        )
        forged_event = msgspec.structs.replace(event, event_id=secrets.token_hex(16))
        async with served(backend, emu.base_url, emu) as app, aiohttp.ClientSession() as http:
            hook = app.state.url + backend.WEBHOOK_PATH

            async def post(body: bytes, headers: dict[str, str]) -> int:
                # Not redirected: the platform does not follow redirects.
                async with http.post(
                    hook, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    await resp.read()
                    return resp.status

            taken = await post(*_push(event))
            again = await post(*_push(event))  # the platform's re-push: taken once
            forged = await post(*_push(forged_event, forge=True))
            status, listed = await _get(http, app.state.url + "/meetings/ended", {})
            # The events are the app's own, not the emulator's business.
            assert emu.requests == []
    assert (taken, again, forged) == (200, 200, 401)
    assert status == 200
    assert listed == {"ended": [msgspec.json.decode(msgspec.json.encode(event))]}
    assert app.state.ended == [event]
