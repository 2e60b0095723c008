"""The three examples run against the emulator, so they never rot.

Each is run as its users would run it (a subprocess, no credentials: it starts its own
emulator and checks itself), and its functions are also driven from here against an
emulator this test controls.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest
from _ratelimit_util import max_in_any_window
from aiohttp import web

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.ratelimit import RateLimit
from tests._gateway import client_limit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted afterwards."""
    import redis

    name = f"test_examples_{uuid.uuid4().hex[:8]}"
    yield name
    r = redis.Redis.from_url(redis_url)
    try:
        keys = list(r.scan_iter(f"{name}*"))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _import(name: str) -> ModuleType:
    import importlib

    return importlib.import_module(name)


def _standalone(
    script: str, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FEISHU_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_aiohttp_backend_shares_one_client(examples: None) -> None:
    backend = _import("aiohttp_backend")
    async with Emulator(meetings=8, seed=2, rate_limit=None) as emu:
        app = backend.make_app(
            base_url=emu.base_url,
            app_id=emu.app_id,
            app_secret=emu.app_secret,
            rate_limit=RateLimit(1000, 1.0),  # scaled: the emulator's gateway is off here
        )
        runner, url = await backend.serve(app, "127.0.0.1", 0)
        try:
            client = app[backend.CLIENT]
            async with aiohttp.ClientSession() as http:

                async def fetch(path: str, params: dict[str, str]) -> tuple[int, Any]:
                    async with http.get(url + path, params=params) as resp:
                        return resp.status, await resp.json()

                results: dict[str, tuple[int, Any]] = {}

                async def one(q: MeetingQuery) -> None:
                    results[q.meeting_no] = await fetch(
                        f"/meetings/{q.meeting_no}/participants",
                        {"start": str(q.meeting_start_time), "end": str(q.meeting_end_time)},
                    )

                async with anyio.create_task_group() as tg:
                    for q in emu.meetings:
                        tg.start_soon(one, q)
                bad = await fetch("/meetings/12/participants", {"start": "1", "end": "2"})
                short = await fetch("/meetings/12345/participants", {"start": "1", "end": "2"})
                not_a_time = await fetch(
                    "/meetings/123456789/participants", {"start": "abc", "end": "2"}
                )
                missing = await fetch(
                    "/meetings/999999999/participants",
                    {
                        "start": str(emu.meetings[0].meeting_start_time),
                        "end": str(emu.meetings[0].meeting_end_time),
                    },
                )
            # One client for every request: one tenant token fetched, not one per request.
            token_fetches = sum(1 for r in emu.requests if r.token_request)
        finally:
            await runner.cleanup()
        for q in emu.meetings:
            status, body = results[q.meeting_no]
            assert status == 200
            names = [p.get("participant_name") for p in body["participants"]]
            assert names == [p.participant_name for p in emu.participants(q)]
    assert token_fetches == 1
    assert not client.is_open  # closed by the app's cleanup
    assert bad[0] == 400
    assert "meeting_no" in bad[1]["error"]
    assert short[0] == 400
    assert short[1]["error"].startswith("meeting_no='12345': must be exactly 9 digits")
    assert not_a_time[0] == 400
    assert "start and end must be unix seconds" in not_a_time[1]["error"]
    assert missing[0] == 404


async def test_the_readme_backend_answers_bad_input_with_400() -> None:
    """README sample 1, run as written: bad input is the caller's error (400, saying
    what is wrong), not the server's (500). No request reaches the platform for it."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### 1. One meeting") :]
    code = section[section.index("```python") + len("```python") : section.index("```\n", 1)]
    namespace: dict[str, Any] = {"__name__": "readme_sample"}
    exec(compile(code, "README.md sample 1", "exec"), namespace)
    runner = web.AppRunner(namespace["app"])
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = "http://{}:{}".format(*runner.addresses[0][:2])
    try:
        async with aiohttp.ClientSession() as http:
            answers = []
            for path, params in (
                ("/meetings/12345/participants", {"start": "1", "end": "2"}),
                ("/meetings/123456789/participants", {"start": "abc", "end": "2"}),
                ("/meetings/123456789/participants", {"end": "2"}),
            ):
                async with http.get(url + path, params=params) as resp:
                    answers.append((resp.status, await resp.text()))
    finally:
        await runner.cleanup()
    assert [status for status, _ in answers] == [400, 400, 400]
    assert "meeting_no='12345': must be exactly 9 digits" in answers[0][1]
    assert answers[1][1] == answers[2][1] == "start and end must be unix seconds"


async def test_bulk_export_resumes_without_duplicates(examples: None, tmp_path: Path) -> None:
    bulk = _import("bulk_export")
    async with Emulator(meetings=30, seed=6, rate_limit=None) as emu:
        out = tmp_path / "p.jsonl"
        common = {
            "base_url": emu.base_url,
            "app_id": emu.app_id,
            "app_secret": emu.app_secret,
            "out": out,
            "rate_limit": RateLimit(1000, 1.0),
        }
        # First run: only some meetings (as if interrupted), then all of them.
        first_rows, _ = await bulk.run(queries=emu.meetings[:10], **common)
        rows, failures = await bulk.run(queries=emu.meetings, **common)
        again, _ = await bulk.run(queries=emu.meetings, **common)
        want = sum(len(emu.participants(q)) for q in emu.meetings)
    assert failures == []
    assert first_rows + rows == want
    assert again == 0
    assert len(out.read_bytes().splitlines()) == want


async def test_tenant_export_reads_one_tenant_and_a_rerun_asks_nothing(
    examples: None, tmp_path: Path
) -> None:
    """examples/tenant_export.py: ``export(client.for_tenant(key), job)`` from Python."""
    tenant_export = _import("tenant_export")
    async with Emulator(meetings=12, seed=8, rate_limit=None, meeting_list_rate_limit=None) as emu:
        app = emu.add_store_app(tenants=2)
        mine, other = (emu.tenant(key) for key in app.tenant_keys)
        out = tmp_path / "tenant.jsonl"
        settings: dict[str, Any] = {
            "base_url": emu.base_url,
            "app_id": app.app_id,
            "app_secret": app.app_secret,
            "app_ticket": emu.app_ticket(app.app_id),
            "tenant_key": app.tenant_keys[0],
            "since": min(q.meeting_start_time for q in mine.meetings),
            "until": max(q.meeting_end_time for q in mine.meetings),
            "out": out,
        }
        first = await tenant_export.export_tenant(**settings)
        rows = tenant_export.read_rows(out)
        emu.reset_log()
        again = await tenant_export.export_tenant(**settings)
        vc_requests = [r for r in emu.requests if "/vc/" in r.path]
    assert first.complete
    assert first.ledger.known >= 10
    keys = {(r["meeting_no"], r["meeting_start_time"]) for r in rows}
    assert keys <= {(q.meeting_no, q.meeting_start_time) for q in mine.meetings}
    assert not keys & {(q.meeting_no, q.meeting_start_time) for q in other.meetings}
    found = first.ledger.discovery
    assert found is not None
    assert len(rows) == sum(len(mine.participants(f.query)) for f in found.found)
    # A second run of a finished export: nothing asked, the file as it was.
    assert again.already_complete
    assert vc_requests == []
    assert tenant_export.read_rows(out) == rows


def test_examples_run_standalone(tmp_path: Path) -> None:
    backend = _standalone("aiohttp_backend.py", tmp_path)
    assert backend.returncode == 0, backend.stderr
    assert "OK" in backend.stdout
    fastapi_backend = _standalone("fastapi_backend.py", tmp_path)
    assert fastapi_backend.returncode == 0, fastapi_backend.stdout + fastapi_backend.stderr
    assert "→ OK" in fastapi_backend.stdout
    bulk = _standalone("bulk_export.py", tmp_path, "--out", str(tmp_path / "bulk.jsonl"))
    tenant = _standalone("tenant_export.py", tmp_path, "--out", str(tmp_path / "tenant.jsonl"))
    assert tenant.returncode == 0, tenant.stdout + tenant.stderr
    assert "→ OK" in tenant.stdout
    assert bulk.returncode == 0, bulk.stderr
    assert "OK" in bulk.stdout


async def test_worker_pool_shares_the_redis_limit(
    examples: None, redis_url: str, prefix: str
) -> None:
    """Three processes of four tasks, one Redis budget: together they keep under the
    gateway (paced a little under it, as tests/_gateway.py explains) and fetch everyone."""
    pool = _import("worker_pool")
    gateway = RateLimit(40, 4.0)  # the example's own scaled limit
    paced = client_limit(gateway)
    async with Emulator(
        meetings=40, seed=5, rate_limit=gateway, data=MeetingData(webinar_size=300)
    ) as emu:
        for query in emu.meetings:  # made now: a first read stalls the emulator's loop
            emu.participants(query)
        settings = {
            "base_url": emu.base_url,
            "app_id": emu.app_id,
            "app_secret": emu.app_secret,
            "redis_url": redis_url,
            "prefix": prefix,
            "requests": paced.requests,
            "period": paced.period,
        }
        results = await pool.run_pool(settings, emu.meetings, processes=3, tasks=4)
        want = sum(len(emu.participants(q)) for q in emu.meetings)
        records = [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
    assert len({r["pid"] for r in results}) == 3
    assert sum(r["participants"] for r in results) == want
    assert [r["failed"] for r in results] == [0, 0, 0]
    assert [r for r in records if r.status == 429] == []
    assert max_in_any_window([r.time for r in records], gateway.period) <= gateway.requests
    # More requests than one period's limit, yet no period over it: one shared budget
    # (three lone processes would send their ~16 each within the first period).
    assert len(records) > gateway.requests


def test_worker_pool_runs_standalone(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """As its users run it: it starts an emulator and checks itself. Its check also
    demands zero 429s at a 1 % margin of 4 s (40 ms), which a loaded machine's send delays
    can exceed, so here the run must complete and deliver every participant; the zero
    429s are asserted above, paced with room for the delays."""
    result = _standalone(
        "worker_pool.py", tmp_path, "--prefix", prefix, FEISHU_VC_REDIS_URL=redis_url
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert result.stdout.count("process ") == 3
    summary = re.search(r"(\d+)/(\d+) participants; .* (\d+) answered 429", result.stdout)
    assert summary is not None, result.stdout
    got, want, refused = (int(g) for g in summary.groups())
    assert got == want > 1000, result.stdout
    assert ("OK" in result.stdout) == (result.returncode == 0) == (refused == 0), result.stdout
