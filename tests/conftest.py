"""Shared test setup: async tests run on asyncio through anyio's plugin (anyio_mode = auto).

Every random choice is replayable: hypothesis is derandomized (its examples derive from
each test, no example database carries state between runs; ``HYPOTHESIS_PROFILE=explore``
searches afresh instead), and tests that draw use ``rng`` (``tests/_seed.py``), whose
seed the header prints.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _virtual_time import SteerableLoop, VirtualLoop
from hypothesis import settings

from tests._browser import Browser, find_chromium
from tests._databases import POSTGRES_URL, TestDatabase, postgres_database, sqlite_database
from tests._seed import SEED_ENV, rng_for, run_seed

# No deadline: a loaded machine runs an example slower, which is no failure of the code.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", derandomize=False, database=None, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

REDIS_URL = os.environ.get("FEISHU_VC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def pytest_report_header() -> str:
    return f"random choices: seed {run_seed()} (replay: {SEED_ENV}={run_seed()})"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """This test's own generator (``tests/_seed.py``); say ``replay_hint()`` on failure."""
    return rng_for(request.node.nodeid)


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """asyncio; on virtual time (``tests/_virtual_time.py``) for ``virtual_time`` tests,
    on a clock the test moves forward for ``steerable_clock`` tests."""
    if request.node.get_closest_marker("virtual_time") is not None:
        return ("asyncio", {"loop_factory": VirtualLoop})
    if request.node.get_closest_marker("steerable_clock") is not None:
        return ("asyncio", {"loop_factory": SteerableLoop})
    return "asyncio"


def _redis_reachable(url: str) -> str | None:
    """None if a Redis answers PING at ``url``, else the reason it does not."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (extra 'redis')"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure to reach it is a reason to skip
        return f"no Redis reachable at {url}: {exc}"
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis URL for tests; skips visibly without one, fails under CI's requirement."""
    reason = _redis_reachable(REDIS_URL)
    if reason is not None:
        if os.environ.get("FEISHU_VC_REQUIRE_REDIS"):
            pytest.fail(f"FEISHU_VC_REQUIRE_REDIS is set but {reason}")
        pytest.skip(reason)
    return REDIS_URL


def _postgres_reachable(url: str) -> str | None:
    """None if a PostgreSQL answers at ``url``, else the reason it does not."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg

    async def ping() -> None:
        conn = await asyncpg.connect(url, timeout=2.0)
        await conn.close()

    try:
        # On a thread of its own: the fixture may be asked for from a running loop.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, ping()).result()
    except Exception as exc:  # any failure to reach it is a reason to skip
        return f"no PostgreSQL reachable at {url}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL of the tests; skips visibly without one, fails when CI or
    FEISHU_VC_REQUIRE_POSTGRES=1 requires it."""
    reason = _postgres_reachable(POSTGRES_URL)
    if reason is not None:
        if os.environ.get("CI") or os.environ.get("FEISHU_VC_REQUIRE_POSTGRES"):
            pytest.fail(f"CI / FEISHU_VC_REQUIRE_POSTGRES require PostgreSQL, but {reason}")
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture(params=["postgres", "sqlite"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    """Each database output's database: a schema of its own in PostgreSQL (dropped
    after), a file in SQLite."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_url")
        async with postgres_database() as db:
            yield db
    else:
        async with sqlite_database(tmp_path) as db:
            yield db


def _browser_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("FEISHU_VC_REQUIRE_BROWSER") == "1"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium (``tests/_browser.py``); skips visibly without one, fails when
    CI or FEISHU_VC_REQUIRE_BROWSER=1 requires it."""
    executable = find_chromium()
    if executable is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if _browser_required():
            pytest.fail(f"CI / FEISHU_VC_REQUIRE_BROWSER=1 require a browser, but {reason}")
        pytest.skip(f"browser test skipped: {reason}")
    async with await Browser.launch(executable) as b:
        yield b
