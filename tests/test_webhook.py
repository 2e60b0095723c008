"""The webhook receiver (``WebhookReceiver``) under a real aiohttp server and a real
uvicorn server (its raw ASGI app), fed by the emulator's pusher (encrypted, signed,
re-pushed) and by hand-made bad pushes: each answered with its status, on_ended given
each meeting's end exactly once, and every refusal logged as one line with no secret."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import msgspec
import pytest
import uvicorn
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feishu_vc_async.auth import MemoryTicketStore, handle_app_ticket_event
from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding
from feishu_vc_async.events import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MeetingEnded,
    WebhookAnswer,
    WebhookReceiver,
    encrypt,
    ended_envelope,
    signature,
)

WALL = 1_780_000_000.0
KEY = "EncKey-b7f1e0c9a2"
TOKEN = "VerifTok-5d3a9e7c"
PATH = "/feishu/events"
LOGGER = "feishu_vc_async.events"
SERVERS = ["aiohttp", "asgi"]


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Receiver(WebhookReceiver):
    """A receiver that says when its ``n``-th push has arrived."""

    def __init__(self, n: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.n, self.arrived = n, 0
        self.nth = asyncio.Event()

    async def answer(self, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        self.arrived += 1
        if self.arrived >= self.n:
            self.nth.set()
        return await super().answer(headers, body)


class Taker:
    """An on_ended that keeps each event, fails its first ``fail`` calls, and says when
    it has ``want`` events. ``gate``: each call waits for it (set by the test)."""

    def __init__(self, want: int = 1, fail: int = 0) -> None:
        self.taken: list[MeetingEnded] = []
        self.calls = 0
        self.fail = fail
        self.want = want
        self.full = asyncio.Event()
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def __call__(self, event: MeetingEnded) -> None:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.calls <= self.fail:
            raise RuntimeError(f"queue down ({TOKEN} must not reach the log)")
        self.taken.append(event)
        if len(self.taken) >= self.want:
            self.full.set()


def _receiver(
    taker: Taker, clock: FakeClock, *, key: str | None = KEY, **kw: Any
) -> WebhookReceiver:
    return WebhookReceiver(
        verification_token=TOKEN, encrypt_key=key, on_ended=taker, clock=clock, **kw
    )


@contextlib.asynccontextmanager
async def _aiohttp_server(receiver: WebhookReceiver) -> AsyncIterator[str]:
    runner = web.AppRunner(receiver.aiohttp_app(PATH), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}{PATH}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def _uvicorn_server(receiver: WebhookReceiver) -> AsyncIterator[str]:
    config = uvicorn.Config(
        receiver.asgi_app(PATH),
        host="127.0.0.1",
        port=0,
        http="h11",
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                assert not task.done(), "uvicorn stopped before it served"
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        server.should_exit = True
        await task


def _serve(kind: str, receiver: WebhookReceiver) -> contextlib.AbstractAsyncContextManager[str]:
    return _aiohttp_server(receiver) if kind == "aiohttp" else _uvicorn_server(receiver)


def _emulator(clock: FakeClock, url: str, **options: Any) -> Emulator:
    events = EventDelivery(
        verification_token=TOKEN, webhook_url=url, repush_after=(0.01, 0.02), **options
    )
    return Emulator(
        meetings=5,
        seed=4,
        rate_limit=None,
        meeting_list_rate_limit=None,
        ending=MeetingsEnding(count=5, every=10),
        clocks=Clocks(wall=clock),
        events=events,
    )


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling what the test can observe) until ``condition()``; fail after 60 s."""
    async with asyncio.timeout(60):
        while not condition():
            await asyncio.sleep(0.005)
    assert condition(), what


# --- the emulator pushing to the receiver --------------------------------------------


def _answered(emu: Emulator, times: int = 1) -> bool:
    """Whether every event told has had ``times`` pushes answered 200."""
    ok = [p.event_id for p in emu.webhook_pushes if p.status == 200]
    return all(ok.count(e.event_id) == times for e in emu.events.announced)


@pytest.mark.parametrize("kind", SERVERS)
async def test_the_emulator_pushes_encrypted_signed_events_each_taken_exactly_once(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "feishu_vc_async")
    clock = FakeClock(WALL)
    taker = Taker(want=5)
    # repeat=1.0: every event is pushed twice, the second answered 200 and not taken.
    async with (
        _serve(kind, _receiver(taker, clock)) as url,
        _emulator(clock, url, encrypt_key=KEY, repeat=1.0) as emu,
    ):
        assert await emu.verify_webhook()
        clock.now += 100
        await asyncio.wait_for(taker.full.wait(), 60)
        await _until(lambda: _answered(emu, 2), "every push answered")
        assert taker.calls == 5
        assert sorted(taker.taken, key=lambda e: e.end_time) == emu.events.announced
        assert [e.query for e in emu.events.announced] == emu.ending
    assert "taken before" in caplog.text  # the repeats, at DEBUG
    assert KEY not in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("kind", SERVERS)
async def test_plaintext_pushes_without_an_encrypt_key(kind: str) -> None:
    clock = FakeClock(WALL)
    taker = Taker(want=5)
    async with (
        _serve(kind, _receiver(taker, clock, key=None)) as url,
        _emulator(clock, url) as emu,
    ):
        assert await emu.verify_webhook()
        clock.now += 100
        await asyncio.wait_for(taker.full.wait(), 60)
        assert sorted(taker.taken, key=lambda e: e.end_time) == emu.events.announced


@pytest.mark.parametrize("kind", SERVERS)
async def test_on_ended_failing_answers_500_and_the_re_push_is_taken_once(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(WALL)
    taker = Taker(want=5, fail=1)
    caplog.set_level(logging.WARNING, LOGGER)
    async with (
        _serve(kind, _receiver(taker, clock)) as url,
        _emulator(clock, url, encrypt_key=KEY) as emu,
    ):
        clock.now += 100
        await asyncio.wait_for(taker.full.wait(), 60)
        await _until(lambda: _answered(emu), "every event answered 200")
        failed = [p for p in emu.webhook_pushes if p.status == 500]
        assert [p.attempt for p in failed] == [1]
        again = [p for p in emu.webhook_pushes if p.event_id == failed[0].event_id]
        assert (again[0].status, again[-1].status) == (500, 200)
        assert [p.attempt for p in again] == list(range(1, len(again) + 1))
        assert sorted(taker.taken, key=lambda e: e.end_time) == emu.events.announced
    lines = [r for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 1
    assert "500" in lines[0].getMessage()
    assert "RuntimeError" in lines[0].getMessage()
    assert KEY not in caplog.text
    assert TOKEN not in caplog.text


async def test_a_receiver_that_never_answers_200_is_re_pushed_then_given_up() -> None:
    clock = FakeClock(WALL)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{PATH}"
    async with _emulator(clock, url, encrypt_key=KEY) as emu:
        assert not await emu.verify_webhook()
        clock.now += 15  # one meeting ends
        await _until(lambda: len(emu.webhook_pushes) == 3, "three attempts")
        assert [p.attempt for p in emu.webhook_pushes] == [1, 2, 3]
        assert all(p.status is None and p.error for p in emu.webhook_pushes)


def test_the_emulator_pushes_to_loopback_http_only() -> None:
    for url in ("https://example.com/hook", "http://10.0.0.1/hook", "ftp://127.0.0.1/"):
        with pytest.raises(ValueError, match=r"EventDelivery\.webhook_url="):
            _emulator(FakeClock(WALL), url)


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_url_verification_with_another_token_fails(kind: str) -> None:
    clock = FakeClock(WALL)
    receiver = WebhookReceiver(
        verification_token="another", encrypt_key=KEY, on_ended=Taker(), clock=clock
    )
    async with _serve(kind, receiver) as url, _emulator(clock, url, encrypt_key=KEY) as emu:
        assert not await emu.verify_webhook()


# --- pushes made by hand ---------------------------------------------------------------


def _event(event_id: str = "ev-1", token: str = TOKEN) -> bytes:
    ended = MeetingEnded(
        event_id=event_id,
        tenant_key="tenant-1",
        app_id="cli_a",
        meeting_id="6911188411934433028",
        meeting_no="235812466",
        start_time=1_779_990_000,
        end_time=1_779_993_600,
        topic="weekly",
    )
    return ended_envelope(ended, token=token)


def _sealed(plaintext: bytes, key: str = KEY) -> bytes:
    return msgspec.json.encode({"encrypt": encrypt(key, plaintext)})


def _signed(body: bytes, at: float, key: str = KEY) -> dict[str, str]:
    timestamp, nonce = str(int(at)), secrets.token_hex(8)
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(timestamp, nonce, key, body),
    }


async def _post(
    url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers or {}) as response,
    ):
        return response.status, await response.json(content_type=None)


def _bad_pushes(now: float) -> list[tuple[str, bytes, dict[str, str], int]]:
    """(what, body, headers, status) of pushes a receiver with KEY and TOKEN refuses."""
    event = _sealed(_event())
    challenge = _sealed(b'{"challenge": "chal-9x8", "token": "nope", "type": "url_verification"}')
    other_key = _sealed(_event(), key="another key")
    wrong_token = _sealed(_event(token="not-the-token"))
    plaintext = _event()
    not_json = b"{not json"
    mismatch = dict(_signed(event, now))
    mismatch[SIGNATURE_HEADER] = "0" * 64
    partial = dict(_signed(event, now))
    del partial[NONCE_HEADER]
    return [
        ("no signature", event, {}, 401),
        ("signature of another body", event, mismatch, 401),
        ("incomplete signature headers", event, partial, 401),
        ("stale timestamp", event, _signed(event, now - 301), 401),
        ("future timestamp", event, _signed(event, now + 301), 401),
        ("signed with another key", event, _signed(event, now, "another key"), 401),
        ("not JSON", not_json, _signed(not_json, now), 400),
        ("encrypted with another key", other_key, _signed(other_key, now), 400),
        ("plaintext though a key is set", plaintext, _signed(plaintext, now), 400),
        ("wrong verification token", wrong_token, _signed(wrong_token, now), 401),
        ("url verification, wrong token", challenge, {}, 401),
    ]


@pytest.mark.parametrize("kind", SERVERS)
async def test_each_bad_push_is_refused_with_its_status_and_one_clean_log_line(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(WALL)
    taker = Taker()
    caplog.set_level(logging.DEBUG, LOGGER)
    async with _serve(kind, _receiver(taker, clock)) as url:
        for what, body, headers, status in _bad_pushes(clock.now):
            caplog.clear()
            got, answer = await _post(url, body, headers)
            assert got == status, what
            assert answer["code"] == status, what
            lines = [r for r in caplog.records if r.name == LOGGER]
            assert len(lines) == 1, what
            assert lines[0].levelno == logging.WARNING
            for secret in (KEY, TOKEN, "chal-9x8", "235812466", "not-the-token"):
                assert secret not in caplog.text, (what, secret)
                assert secret not in str(answer), (what, secret)
        got, _ = await _post(url, b"", method="GET")
        assert got == 405
    assert taker.calls == 0


@pytest.mark.parametrize("kind", SERVERS)
async def test_without_a_key_an_encrypted_body_and_a_wrong_token_are_refused(kind: str) -> None:
    clock = FakeClock(WALL)
    taker = Taker()
    async with _serve(kind, _receiver(taker, clock, key=None)) as url:
        assert (await _post(url, _sealed(_event())))[0] == 400
        assert (await _post(url, _event(token="not-the-token")))[0] == 401
        assert (await _post(url, b"[1, 2]"))[0] == 400
        assert await _post(url, _event()) == (200, {"code": 0, "msg": "success"})
    assert taker.calls == 1


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_url_verification_is_answered_unsigned_and_other_events_ignored(
    kind: str,
) -> None:
    clock = FakeClock(WALL)
    taker = Taker()
    check = b'{"challenge": "chal-1", "token": "%s", "type": "url_verification"}' % TOKEN.encode()
    other = _event().replace(b"vc.meeting.all_meeting_ended_v1", b"im.message.receive_v1")
    schema1 = b'{"type": "event_callback", "token": "%s", "event": {}}' % TOKEN.encode()
    async with _serve(kind, _receiver(taker, clock)) as url:
        assert await _post(url, _sealed(check)) == (200, {"challenge": "chal-1"})
        for body in (_sealed(other), _sealed(schema1)):
            assert (await _post(url, body, _signed(body, clock.now)))[0] == 200
    assert taker.calls == 0


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_duplicate_event_is_taken_once_even_while_the_first_is_in_on_ended(
    kind: str,
) -> None:
    clock = FakeClock(WALL)
    taker = Taker()
    taker.gate = asyncio.Event()
    body = _sealed(_event("ev-dup"))
    receiver = Receiver(2, verification_token=TOKEN, encrypt_key=KEY, on_ended=taker, clock=clock)
    async with _serve(kind, receiver) as url:
        first = asyncio.create_task(_post(url, body, _signed(body, clock.now)))
        await asyncio.wait_for(taker.entered.wait(), 60)
        second = asyncio.create_task(_post(url, body, _signed(body, clock.now)))
        # Its answer runs without a pause up to waiting on the first: once it has
        # arrived, it waits.
        await asyncio.wait_for(receiver.nth.wait(), 60)
        taker.gate.set()
        assert [status for status, _ in await asyncio.gather(first, second)] == [200, 200]
        assert (await _post(url, body, _signed(body, clock.now)))[0] == 200
    assert taker.calls == 1
    assert [e.event_id for e in taker.taken] == ["ev-dup"]


async def test_the_ids_remembered_are_bounded() -> None:
    clock = FakeClock(WALL)
    taker = Taker()
    receiver = _receiver(taker, clock, key=None, seen=2)
    for event_id in ("a", "b", "c", "a", "c"):
        answer = await receiver.answer({}, _event(event_id))
        assert answer.status == 200
    assert [e.event_id for e in taker.taken] == ["a", "b", "c", "a"]


# --- a body over max_body -------------------------------------------------------------


async def _raw_answer(url: str, head: bytes, part: bytes) -> bytes:
    """Send ``head`` and ``part`` of a body on a raw socket, never the rest; the status
    line of the answer (it comes before the body is all sent, or never)."""
    port = int(url.split(":")[2].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + part)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 60)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_body_over_max_body_is_refused_413_before_it_is_all_sent(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(WALL)
    taker = Taker()
    caplog.set_level(logging.WARNING, LOGGER)
    async with _serve(kind, _receiver(taker, clock, max_body=4096)) as url:
        declared = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 50000000\r\n\r\n"
        ).encode()
        assert b" 413 " in await _raw_answer(url, declared, b"x" * 1000)
        chunked = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"  # 4096 bytes a chunk, never a last one
        assert b" 413 " in await _raw_answer(url, chunked, chunk * 2)
        body = _sealed(_event())
        assert (await _post(url, body, _signed(body, clock.now)))[0] == 200
    assert taker.calls == 1
    assert len([r for r in caplog.records if r.name == LOGGER]) == 2


@pytest.mark.parametrize(
    ("path", "root_path"),
    [
        ("/feishu/events", "/feishu/events"),  # Starlette's Mount: full path, root_path set
        ("/", "/feishu/events"),  # older mounts: the path within
        ("/feishu/events/", "/feishu/events"),
    ],
)
async def test_the_asgi_app_answers_where_a_framework_mounts_it(path: str, root_path: str) -> None:
    taker = Taker()
    app = _receiver(taker, FakeClock(WALL), key=None).asgi_app()
    body = _event()
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": root_path,
        "headers": [(b"content-length", str(len(body)).encode())],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert taker.calls == 1


@pytest.mark.parametrize(
    ("kw", "rule"),
    [
        ({"verification_token": ""}, "verification_token: must be a non-empty string"),
        ({"encrypt_key": " "}, "encrypt_key: must be a non-empty string"),
        ({"max_body": 0}, "max_body=0"),
        ({"max_age": -1.0}, "max_age=-1.0"),
        ({"seen": 0}, "seen=0"),
    ],
)
def test_the_receiver_refuses_settings_that_cannot_work(kw: dict[str, Any], rule: str) -> None:
    settings: dict[str, Any] = {"verification_token": TOKEN, "encrypt_key": KEY, **kw}
    with pytest.raises(ValueError, match=rule) as caught:
        WebhookReceiver(on_ended=Taker(), **settings)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_store_apps_app_ticket_reaches_on_other(kind: str) -> None:
    clock = FakeClock(WALL)
    tickets = MemoryTicketStore()
    failing = [True]

    async def on_other(body: bytes) -> None:
        if failing and failing.pop():
            raise ConnectionError("the ticket store is down")
        await handle_app_ticket_event(body, tickets, app_id="cli_store")

    receiver = WebhookReceiver(
        verification_token=TOKEN, encrypt_key=KEY, on_ended=Taker(), on_other=on_other, clock=clock
    )
    event = {
        "uuid": "u-1",
        "token": TOKEN,
        "ts": "1780000000.0",
        "type": "event_callback",
        "event": {"app_id": "cli_store", "app_ticket": "tkt-42", "type": "app_ticket"},
    }
    body = _sealed(msgspec.json.encode(event))
    async with _serve(kind, receiver) as url:
        assert (await _post(url, body, _signed(body, clock.now)))[0] == 500
        assert await tickets.get() is None
        assert (await _post(url, body, _signed(body, clock.now)))[0] == 200
    assert await tickets.get() == "tkt-42"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=600),
        st.builds(lambda s: msgspec.json.encode({"encrypt": s}), st.text(max_size=200)),
        st.builds(_sealed, st.binary(max_size=300)),
    ),
    headers=st.dictionaries(
        st.sampled_from([TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER, "content-type"]),
        st.text(max_size=80),
    ),
)
def test_any_push_gets_an_answer_and_never_reaches_on_ended_unsigned(
    body: bytes, headers: dict[str, str]
) -> None:
    taker = Taker()
    receiver = _receiver(taker, FakeClock(WALL))
    answer = asyncio.run(receiver.answer(headers, body))
    assert answer.status in (200, 400, 401)
    assert taker.calls == 0
    assert KEY.encode() not in answer.body
    assert TOKEN.encode() not in answer.body
