"""``LongConnection`` against the emulator's long connection, over real sockets on
127.0.0.1: events in parts, drops with nothing lost, ping and pong, a clean cancel, bad
credentials, two listeners sharing the events. Intervals are scaled through
``EventDelivery``; meetings end as a fake wall clock passes them; every wait is on
something observable (a bounded poll), never on a number of seconds."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web

from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding
from feishu_vc_async.events import ClientConfig, LongConnection, LongConnectionError, MeetingEnded
from feishu_vc_async.events import _long_connection as long_connection_module
from feishu_vc_async.events._parts import PartJoiner

WALL = 1_780_000_000.0
FAST = {"ping_interval": 0.05, "reconnect_interval": 0.01, "reconnect_nonce": 0.01}


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _emulator(clock: FakeClock, count: int, **events: float) -> Emulator:
    return Emulator(
        meetings=5,
        seed=3,
        rate_limit=None,
        meeting_list_rate_limit=None,
        ending=MeetingsEnding(count=count, every=10),
        clocks=Clocks(wall=clock),
        events=EventDelivery(**{**FAST, **events}),  # type: ignore[arg-type]
    )


async def _until(check: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll ``check`` (a safety limit only: the tests wait on what they observe)."""
    try:
        async with asyncio.timeout(limit):
            while not check():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"never: {what}") from None


class Listener:
    def __init__(self, emu: Emulator, **options: object) -> None:
        self.got: list[MeetingEnded] = []
        self.conn = LongConnection(
            base_url=emu.base_url,
            app_id=emu.app_id,
            app_secret=emu.app_secret,
            on_ended=self.on_ended,
            rng=random.Random(7),
            **options,  # type: ignore[arg-type]
        )
        self.task: asyncio.Task[None] | None = None

    async def on_ended(self, ended: MeetingEnded) -> None:
        self.got.append(ended)

    def start(self) -> Listener:
        self.task = asyncio.get_running_loop().create_task(self.conn.run())
        return self

    async def stop(self) -> None:
        assert self.task is not None
        assert not self.task.done(), self.task
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def _client_tasks() -> list[asyncio.Task[object]]:
    return [
        t
        for t in asyncio.all_tasks()
        if "LongConnection" in getattr(t.get_coro(), "__qualname__", "")
    ]


def _ok_acks(emu: Emulator) -> Counter[str]:
    return Counter(a.event_id for a in emu.ws_acks if a.code == 200)


async def test_events_in_parts_are_joined_called_and_acked_once() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 6, split_parts=3) as emu:
        listener = Listener(emu).start()
        await _until(lambda: len(emu.event_router.connections) == 1, "connected")
        clock.now += 100
        await _until(lambda: len(emu.ws_acks) == 6, "six acks")
        await listener.stop()
        announced = [e.event_id for e in emu.events.announced]
        assert [e.event_id for e in listener.got] == announced
        assert [e.query for e in listener.got] == emu.ending
        assert _ok_acks(emu) == Counter(announced)
        assert all(a.biz_rt is not None and a.biz_rt >= 0 for a in emu.ws_acks)
        assert len({a.message_id for a in emu.ws_acks}) == 6
        assert listener.conn.acked == 6


async def test_ten_drops_lose_nothing_and_each_event_is_acked_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock(WALL)
    async with _emulator(clock, 24, drop_every=3, split_parts=2) as emu:
        listener = Listener(emu).start()
        await _until(lambda: len(emu.event_router.connections) == 1, "connected")
        for n in range(1, 25):
            clock.now += 10  # one meeting ends: its event is acked before the next ends
            await _until(lambda n=n: len(_ok_acks(emu)) == n, f"event {n} acked")  # type: ignore[misc]
        await listener.stop()
        announced = [e.event_id for e in emu.events.announced]
        assert len(announced) == 24
        assert emu.long_connections.drops >= 10
        assert listener.conn.connects == emu.long_connections.drops + 1
        assert _ok_acks(emu) == Counter(announced)  # each acked once, none lost
        assert {e.event_id for e in listener.got} == set(announced)
        assert not emu.event_router.held
    for secret in (emu.app_secret, "ticket="):
        assert secret not in caplog.text
    assert emu.app_secret not in repr(listener.conn)


async def test_pings_on_the_servers_interval_and_a_pong_changes_the_config() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 0, ping_interval=0.02, reconnect_interval=0.5) as emu:
        listener = Listener(emu).start()
        await _until(lambda: emu.long_connections.pings >= 3, "three pings")
        assert listener.conn.client_config == ClientConfig(0.02, -1, 0.5, 0.01)
        emu.long_connections.config["ReconnectInterval"] = 7.5
        await _until(
            lambda: listener.conn.client_config.reconnect_interval == 7.5, "the pong's config"
        )
        await listener.stop()


async def test_cancel_closes_the_socket_and_leaves_no_task() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 2) as emu, aiohttp.ClientSession() as session:
        before = asyncio.all_tasks()
        listener = Listener(emu, session=session).start()
        await _until(lambda: len(emu.event_router.connections) == 1, "connected")
        clock.now += 30
        await _until(lambda: len(emu.ws_acks) == 2, "two acks")
        assert _client_tasks()  # run() and its pinger
        await listener.stop()
        assert _client_tasks() == []  # at once: nothing of the client outlives run()
        await _until(lambda: not emu.event_router.connections, "the server saw the close")
        await _until(lambda: asyncio.all_tasks() <= before, "the server's handler ended")
        assert not session.closed  # the caller's session is the caller's to close
        owned = Listener(emu).start()  # with a session of its own, closed on cancel
        await _until(lambda: len(emu.event_router.connections) == 1, "connected again")
        await owned.stop()
        assert _client_tasks() == []
        assert emu.long_connections.drops == 0


async def test_bad_credentials_raise_at_once_without_the_secret() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 0) as emu:
        secret = "s3cr3t-not-the-apps"
        conn = LongConnection(
            base_url=emu.base_url,
            app_id=emu.app_id,
            app_secret=secret,
            on_ended=Listener(emu).on_ended,
        )
        with pytest.raises(LongConnectionError) as caught:
            await conn.run()
        assert caught.value.code == 514
        assert caught.value.permanent
        assert not caught.value.retryable
        assert secret not in str(caught.value) + repr(caught.value) + repr(conn)
        assert emu.requests[-1].code == 514
        assert emu.requests[-1].token_request  # its body (the secret) is not recorded


async def test_an_unreachable_endpoint_raises_on_the_first_attempt() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 0) as emu:
        base, app_id, secret = emu.base_url, emu.app_id, emu.app_secret
    conn = LongConnection(
        base_url=base, app_id=app_id, app_secret=secret, on_ended=Listener(emu).on_ended
    )
    with pytest.raises(LongConnectionError, match="could not be reached") as caught:
        await conn.run()
    assert caught.value.code is None
    assert not caught.value.permanent


async def test_two_listeners_share_the_events_each_to_one() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 12) as emu:
        one, two = Listener(emu).start(), Listener(emu).start()
        await _until(lambda: len(emu.event_router.connections) == 2, "both connected")
        clock.now += 200
        await _until(lambda: len(emu.ws_acks) == 12, "twelve acks")
        await one.stop()
        await two.stop()
        first, second = {e.event_id for e in one.got}, {e.event_id for e in two.got}
        assert first
        assert second
        assert not first & second
        assert first | second == {e.event_id for e in emu.events.announced}
        assert len(one.got) + len(two.got) == 12


async def test_a_failing_handler_is_acked_500_and_the_next_event_still_comes() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 2) as emu:
        calls: list[str] = []

        async def flaky(ended: MeetingEnded) -> None:
            calls.append(ended.event_id)
            if len(calls) == 1:
                raise RuntimeError("the handler failed")

        conn = LongConnection(
            base_url=emu.base_url, app_id=emu.app_id, app_secret=emu.app_secret, on_ended=flaky
        )
        task = asyncio.get_running_loop().create_task(conn.run())
        await _until(lambda: len(emu.event_router.connections) == 1, "connected")
        clock.now += 30
        await _until(lambda: len(emu.ws_acks) == 2, "two acks")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [a.code for a in emu.ws_acks] == [500, 200]
        assert calls == [e.event_id for e in emu.events.announced]


async def test_the_51st_connection_is_refused_with_its_code() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 0, ping_interval=3600) as emu:
        listeners = [Listener(emu).start() for _ in range(50)]
        await _until(lambda: emu.long_connections.open_count(emu.app_id) == 50, "fifty open")
        with pytest.raises(LongConnectionError) as caught:
            await Listener(emu).conn.run()
        assert caught.value.code == 1000040350
        assert not caught.value.permanent  # it may pass: retried once connected
        for listener in listeners:
            await listener.stop()


async def test_reconnects_stop_after_reconnect_count_tries() -> None:
    clock = FakeClock(WALL)
    emu = _emulator(clock, 0, reconnect_interval=0.001, reconnect_nonce=0.001)
    async with emu:
        emu.long_connections.config["ReconnectCount"] = 2
        listener = Listener(emu).start()
        await _until(lambda: len(emu.event_router.connections) == 1, "connected")
        assert listener.conn.client_config.reconnect_count == 2
    # The emulator closed the connection (a close frame) and no longer answers.
    assert listener.task is not None
    with pytest.raises(LongConnectionError, match="did not reopen in 2 tries"):
        await asyncio.wait_for(listener.task, 60)
    assert _client_tasks() == []


def test_parts_are_bounded_in_count_size_and_time() -> None:
    now = [0.0]
    joiner = PartJoiner(
        timeout=5.0, max_messages=2, max_parts=4, max_bytes=10, clock=lambda: now[0]
    )
    assert joiner.add("a", 2, 1, b"lo") is None
    assert joiner.add("a", 2, 0, b"hel") == b"hello"  # seq order, whatever the arrival order
    assert joiner.add("b", 5, 0, b"x") is None  # over max_parts: dropped
    assert joiner.add("c", 2, 2, b"x") is None  # seq out of range: dropped
    assert joiner.add("d", 2, 0, b"0123456789x") is None  # over max_bytes: dropped
    assert joiner.add("e", 2, 0, b"e") is None
    assert joiner.add("f", 2, 0, b"f") is None
    assert joiner.add("g", 2, 0, b"g") is None  # a third pending one: the oldest (e) goes
    assert joiner.add("e", 2, 1, b"!") is None  # e starts again, f goes
    assert len(joiner) == 2
    now[0] += 6
    assert joiner.add("h", 2, 0, b"h") is None  # e and g timed out
    assert len(joiner) == 1
    assert joiner.add("h", 3, 1, b"h") is None  # a different sum: the message dropped
    assert joiner.dropped == 8


async def test_a_silent_peer_is_taken_for_a_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    # A server that takes pings (its own and WebSocket ones) and never answers; the
    # heartbeat scaled down.
    monkeypatch.setattr(long_connection_module, "HEARTBEAT", 0.05)
    config = {"PingInterval": 0.01, "ReconnectInterval": 0.01, "ReconnectNonce": 0}

    async def endpoint(request: web.Request) -> web.Response:
        url = f"ws://{request.host}/ws?device_id=d1&service_id=1"
        return web.json_response({"code": 0, "data": {"URL": url, "ClientConfig": config}})

    pings = Counter[int]()

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        opened = len(pings)
        pings[opened] = 0
        async for _ in ws:
            pings[opened] += 1
        return ws

    app = web.Application()
    app.router.add_post("/callback/ws/endpoint", endpoint)
    app.router.add_get("/ws", socket)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        conn = LongConnection(
            base_url=f"http://127.0.0.1:{port}",
            app_id="cli_x",
            app_secret="s",
            on_ended=Listener.on_ended,  # type: ignore[arg-type]
            rng=random.Random(1),
        )
        task = asyncio.get_running_loop().create_task(conn.run())
        await _until(lambda: conn.connects >= 3, "two reconnects after silence")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pings[0] >= 1  # it did ping the silent peer
    finally:
        await runner.cleanup()


async def test_one_connection_runs_once_at_a_time() -> None:
    clock = FakeClock(WALL)
    async with _emulator(clock, 0) as emu:
        listener = Listener(emu).start()
        await _until(lambda: listener.conn.connects == 1, "connected")
        with pytest.raises(RuntimeError, match="already running"):
            await listener.conn.run()
        await listener.stop()
