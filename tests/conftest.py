"""Shared test setup: async tests run on asyncio through anyio's plugin (anyio_mode = auto)."""

from __future__ import annotations

import os

import pytest
from _virtual_time import VirtualLoop

REDIS_URL = os.environ.get("FEISHU_VC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """asyncio; on virtual time (``tests/_virtual_time.py``) for ``virtual_time`` tests."""
    if request.node.get_closest_marker("virtual_time") is not None:
        return ("asyncio", {"loop_factory": VirtualLoop})
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
