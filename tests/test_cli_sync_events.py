"""``feishu-vc sync --db URL --webhook HOST:PORT ...`` and ``--events`` as users run them,
in a process of their own: the webhook gets events this test encrypts and signs itself
(as the platform does), the long connection gets the emulator's own; each meeting's
rows land in the database, an event sent twice is fetched once, a forged one is
refused, and SIGTERM ends the follower with 143. Every wait is for something observable
(a line in the log, a row in the database, an event announced)."""

from __future__ import annotations

import io
import json
import re
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import anyio.abc
import pytest
from msgspec.structs import astuple

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.cli import main
from feishu_vc_async.emulator import Clocks, Emulator, EventDelivery, MeetingsEnding
from feishu_vc_async.events import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    encrypt,
    ended_envelope,
    signature,
)
from tests._cli import app_env
from tests._databases import TestDatabase
from tests._kill_runs import DEADLINE

pytestmark = pytest.mark.anyio

ENCRYPT_KEY = "test-encrypt-key-" + secrets.token_hex(4)
TOKEN = "test-verification-token"


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _argv(emu: Emulator, database: TestDatabase, *extra: str) -> list[str]:
    schema = ["--db-schema", database.schema] if database.schema else []
    fast = ["--rate-limit", "1000/1s", "--meeting-list-rate-limit", "1000/1s"]
    return [
        sys.executable,
        "-m",
        "feishu_vc_async",
        "sync",
        "--db",
        database.url,
        *schema,
        "--since",
        "2d",
        "--base-url",
        emu.base_url,
        *fast,
        "--settle",
        "0s",
        "--progress",
        "none",
        *extra,
    ]


@asynccontextmanager
async def _running(
    argv: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[tuple[anyio.abc.Process, Callable[[Callable[[str], bool]], Awaitable[str]]]]:
    """The command running, its output in ``log``; yields it and a wait for a log
    condition. Fails the test after DEADLINE."""
    with log.open("ab") as sink:
        process = await anyio.open_process(argv, env=env, stdout=sink, stderr=sink)

        async def said(holds: Callable[[str], bool]) -> str:
            while not holds(text := log.read_text()):
                assert process.returncode is None, text
                await anyio.sleep(0.01)
            return text

        try:
            with anyio.fail_after(DEADLINE):
                yield process, said
        finally:
            if process.returncode is None:
                process.kill()
            await process.aclose()


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    while not await check():
        await anyio.sleep(0.01)


def _truth(emu: Emulator) -> dict[str, list[tuple[object, ...]]]:
    return {
        f"{q.meeting_no}@{q.meeting_start_time}": [astuple(p) for p in emu.participants(q)]
        for q in emu.ending
    }


def _signed(body: bytes, *, key: str = ENCRYPT_KEY) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(timestamp, nonce, key, body),
        "Content-Type": "application/json",
    }


async def test_sync_webhook_takes_signed_encrypted_events_once(
    database: TestDatabase, tmp_path: Path
) -> None:
    # The meetings end when the test moves the emulator's clock, after the sync's first
    # cycle: so they are taken by events, not by that cycle's listing.
    clock = FakeClock(time.time())
    ending = MeetingsEnding(count=2, every=60)
    async with Emulator(
        meetings=8, seed=71, rate_limit=None, ending=ending, clocks=Clocks(wall=clock)
    ) as emu:
        # The command line as the issue writes it: the secrets as flags.
        webhook = ["--webhook", "127.0.0.1:0", "--encrypt-key", ENCRYPT_KEY]
        argv = _argv(emu, database, *webhook, "--verification-token", TOKEN)
        env = {**app_env(emu), "PATH": "/usr/bin"}
        log = tmp_path / "sync.log"
        async with _running(argv, env, log) as (process, said):
            text = await said(lambda t: "sync cycle 1:" in t and "webhook at" in t)
            found = re.search(r"webhook at (http://\S+)", text)
            assert found is not None, text
            url = found.group(1)
            clock.now += 121  # both end: the emulator's feed announces them
            while len(emu.events.announced) < 2:
                await anyio.sleep(0.01)
            emu.reset_log()
            async with aiohttp.ClientSession() as http:
                forged = {"encrypt": encrypt(ENCRYPT_KEY, b"{}")}
                body = json.dumps(forged).encode()
                headers = _signed(body, key="not-the-key")
                async with http.post(url, data=body, headers=headers) as answer:
                    assert answer.status == 401
                for event in emu.events.announced * 2:  # each pushed twice
                    plain = ended_envelope(event, token=TOKEN)
                    body = json.dumps({"encrypt": encrypt(ENCRYPT_KEY, plain)}).encode()
                    async with http.post(url, data=body, headers=_signed(body)) as answer:
                        assert answer.status == 200, await answer.text()
            truth = _truth(emu)

            async def landed() -> bool:
                held = await database.participants()
                return all(held.get(k) == rows for k, rows in truth.items())

            await _until(landed)
            process.send_signal(signal.SIGTERM)
            code = await process.wait()
        said_text = log.read_text()
    assert code == 143, said_text
    assert "sync events:" in said_text
    assert ENCRYPT_KEY not in said_text
    assert TOKEN not in said_text
    first_pages = [
        r.params["meeting_no"]
        for r in emu.requests
        if r.path == PARTICIPANT_LIST_PATH and "page_token" not in r.params
    ]
    assert sorted(first_pages) == sorted(q.meeting_no for q in emu.ending)  # each once


async def test_sync_events_takes_the_long_connections_events(
    database: TestDatabase, tmp_path: Path
) -> None:
    ending = MeetingsEnding(count=2, every=1.0)
    events = EventDelivery(split_parts=2, ping_interval=0.5)
    async with Emulator(meetings=8, seed=72, rate_limit=None, ending=ending, events=events) as emu:
        argv = _argv(emu, database, "--events")
        env = {**app_env(emu), "PATH": "/usr/bin"}
        log = tmp_path / "sync.log"
        async with _running(argv, env, log) as (process, said):
            await said(lambda t: "the long connection" in t)
            while len(emu.events.announced) < 2:  # ended: their rows are final
                await anyio.sleep(0.01)
            truth = _truth(emu)

            async def landed() -> bool:
                held = await database.participants()
                return all(held.get(k) == rows for k, rows in truth.items())

            await _until(landed)
            await said(lambda t: "sync events:" in t)
            while len({a.event_id for a in emu.ws_acks if a.code == 200}) < 2:
                assert process.returncode is None, log.read_text()
                await anyio.sleep(0.01)  # each event acked once it is in the inbox
            process.send_signal(signal.SIGTERM)
            code = await process.wait()
        said_text = log.read_text()
    assert code == 143, said_text
    assert emu.app_secret not in said_text
    assert {a.event_id for a in emu.ws_acks if a.code == 200} == {
        e.event_id for e in emu.events.announced
    }


def test_event_options_are_checked_before_any_request(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    env = {
        "FEISHU_APP_ID": "cli_x",
        "FEISHU_APP_SECRET": "s",
        "FEISHU_BASE_URL": "http://127.0.0.1:9",
    }
    cases = [
        (["--webhook", "nowhere"], "--webhook 'nowhere': must be HOST:PORT"),
        (["--webhook", "127.0.0.1:0"], "needs the app's verification token"),
        (["--webhook", "127.0.0.1:0", "--verification-token", "t", "--once"], "--once"),
        (["--encrypt-key", "k"], "--encrypt-key needs --webhook"),
        (["--events", "--settle", "soon"], "--settle 'soon'"),
    ]
    for extra, message in cases:
        err = io.StringIO()
        code = main(["sync", "--db", db, *extra], env=env, stdout=io.StringIO(), stderr=err)
        assert code == 2, (extra, err.getvalue())
        assert message in err.getvalue(), (extra, err.getvalue())
    assert not (tmp_path / "x.db").exists()
