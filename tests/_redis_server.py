"""A redis-server of one test's own, for tests that stop and restart Redis.

The machine's Redis is shared by every test run: a test never stops it. This starts
``redis-server`` on a free loopback port in a temporary directory, without persistence
by default, so stopping it loses every key (as a crashed Redis without a disk would) and
a restart on the same port is an empty Redis. With ``appendonly=True`` it keeps an
append-only file in that directory, written and fsynced before each write is answered
(``appendfsync always``): a restart on the same port and directory has every key an
answered write left, as a production Redis with AOF would after a crash. With
``password``, clients must give it (``requirepass``; :attr:`url` holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from pathlib import Path

import pytest

__all__ = ["PrivateRedis", "redis_server_executable"]

# How long a starting redis-server may take to say it is ready (a loaded machine).
_START_TIMEOUT = 60.0


def redis_server_executable() -> str:
    """The redis-server binary; skips visibly without one, fails when
    FEISHU_VC_REQUIRE_REDIS is set."""
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )
    if path is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("FEISHU_VC_REQUIRE_REDIS"):
            pytest.fail(f"FEISHU_VC_REQUIRE_REDIS is set but {reason}")
        pytest.skip(reason)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateRedis:
    """One redis-server on 127.0.0.1 that a test may stop (SIGKILL) and start again."""

    def __init__(
        self,
        executable: str,
        directory: Path,
        *,
        appendonly: bool = False,
        password: str | None = None,
    ) -> None:
        self._executable = executable
        self._directory = directory
        self._appendonly = appendonly
        self._password = password
        self.port = _free_port()
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        auth = "" if self._password is None else f":{self._password}@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None

    async def start(self) -> None:
        """Start it and return once it accepts connections (it says so on stdout)."""
        assert self._process is None, "already running"
        aof = ("yes", "--appendfsync", "always") if self._appendonly else ("no",)
        auth = () if self._password is None else ("--requirepass", self._password)
        process = await asyncio.create_subprocess_exec(
            self._executable,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", *aof, "--daemonize", "no", "--dir", str(self._directory)),
            *auth,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._process = process
        assert process.stdout is not None
        said: list[bytes] = []
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                while b"Ready to accept connections" not in (said or [b""])[-1]:
                    said.append(await process.stdout.readline())
                    if not said[-1]:
                        raise RuntimeError(f"redis-server exited: {b''.join(said)!r}")
        except BaseException:
            await self.stop()
            raise
        # Its later output is read and dropped, so that it never fills the pipe.
        self._drain = asyncio.create_task(_discard(process.stdout))

    def kill(self) -> None:
        """SIGKILL it now, from anywhere (a callback that cannot await); :meth:`stop`
        then waits until it is gone."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # gone already
                self._process.kill()

    async def stop(self) -> None:
        """Kill it (no shutdown, no save) and wait until it is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await process.wait()
        drain, self._drain = self._drain, None
        if drain is not None:
            await drain  # ends at the killed process's end of output

    async def __aenter__(self) -> PrivateRedis:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
