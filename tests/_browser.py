"""A headless Chromium for tests, driven over the DevTools protocol (no selenium).

::

    async with await Browser.launch() as browser:
        await browser.open(url)                 # navigate, wait for the load event
        await browser.text("app-name")          # innerText of an element (or the body)
        await browser.click("approve")          # click by id, wait for the next page
        await browser.url()                     # where the tab is now

Chromium starts with a throw-away profile and ``--remote-debugging-port=0``; the port it
picked is read from ``<profile>/DevToolsActivePort``, and one page target is driven over
the browser's websocket with flat sessions (aiohttp's websocket client). Besides the
headless flags, two more keep it on this machine: every host name but 127.0.0.1 fails
to resolve and every non-loopback connection goes to a dead proxy. ``close`` asks the
browser to exit, waits for it, and only if it hangs kills its process group (started
as a session of its own), so no process outlives a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import aiohttp

__all__ = ["Browser", "BrowserError", "find_chromium"]

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",  # loopback bypasses proxies: all else goes nowhere
    "--remote-debugging-port=0",
)


class BrowserError(Exception):
    """Chromium failed to start, a DevTools command failed, or a wait timed out."""


def find_chromium() -> str | None:
    """``FEISHU_VC_CHROMIUM``, else ``chromium`` on PATH (Debian's /usr/bin/chromium)."""
    return os.environ.get("FEISHU_VC_CHROMIUM") or shutil.which("chromium")


class Browser:
    """One headless Chromium with one tab. Create with :meth:`launch`."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        workdir: tempfile.TemporaryDirectory[str],
        log: IO[bytes],
    ) -> None:
        self._process = process
        self._workdir = workdir
        self._log = log
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[dict[str, Any]] = []
        self._new_event = asyncio.Event()
        self._target_id: str | None = None
        self._session_id: str | None = None

    @classmethod
    async def launch(cls, executable: str | None = None, *, timeout: float = 120.0) -> Browser:
        exe = executable or find_chromium()
        if exe is None:
            raise BrowserError("chromium is not installed")
        workdir = tempfile.TemporaryDirectory(
            prefix="feishu-vc-chromium-", ignore_cleanup_errors=True
        )
        profile = Path(workdir.name) / "profile"
        log = open(Path(workdir.name) / "chromium.log", "wb")  # noqa: SIM115 (closed in close())
        process = await asyncio.create_subprocess_exec(
            exe,
            *_FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # its own process group: one id to end it by
        )
        browser = cls(process, workdir, log)
        try:
            await browser._connect(profile / "DevToolsActivePort", timeout)
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _connect(self, port_file: Path, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) >= 2:
                break
            if self._process.returncode is not None or loop.time() > deadline:
                raise BrowserError(f"chromium did not start: {self._log_tail()}")
            await asyncio.sleep(0.05)
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(
            f"ws://127.0.0.1:{lines[0]}{lines[1]}", max_msg_size=0
        )
        self._reader = loop.create_task(self._read())
        target = await self._send("Target.createTarget", {"url": "about:blank"}, browser=True)
        attached = await self._send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser=True
        )
        self._target_id = target["targetId"]
        self._session_id = attached["sessionId"]
        await self._send("Page.enable")

    def _log_tail(self) -> str:
        self._log.flush()
        text = Path(self._log.name).read_bytes()[-1500:].decode(errors="replace")
        return text.strip() or "(no output)"

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = message.json()
                future = self._waiting.pop(data["id"], None) if "id" in data else None
                if future is not None:
                    if not future.done():
                        future.set_result(data)
                elif "method" in data:
                    self._events.append(data)
                    self._new_event.set()
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(BrowserError("the DevTools connection closed"))
            self._waiting.clear()

    async def _send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        browser: bool = False,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """One DevTools command to the tab (or to the browser), its ``result``."""
        if self._ws is None or self._ws.closed:
            raise BrowserError("the browser is not connected")
        message: dict[str, Any] = {"id": next(self._ids), "method": method}
        if params:
            message["params"] = params
        if not browser:
            message["sessionId"] = self._session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message["id"]] = future
        await self._ws.send_json(message)
        try:
            answer = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._waiting.pop(message["id"], None)
            raise BrowserError(f"{method}: no answer within {timeout} s") from None
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def _wait_event(self, method: str, since: int, timeout: float) -> dict[str, Any]:
        """The first ``method`` event of the tab after event number ``since``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = since
        while True:
            for event in self._events[seen:]:
                if event["method"] == method and event.get("sessionId") == self._session_id:
                    return event
            seen = len(self._events)
            self._new_event.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise BrowserError(f"no {method} within {timeout} s (at {await self.url()})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), left)

    # --- what tests use -------------------------------------------------------------

    async def open(self, url: str, *, timeout: float = 60.0) -> None:
        """Navigate the tab to ``url`` and wait until the page has loaded."""
        mark = len(self._events)
        result = await self._send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        await self._wait_event("Page.loadEventFired", mark, timeout)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self._send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def click(
        self, element_id: str, *, navigates: bool = True, timeout: float = 60.0
    ) -> None:
        """Click the element with id ``element_id``; if it ``navigates``, wait for the next
        page to load (redirects included)."""
        mark = len(self._events)
        found = await self.evaluate(
            f"(() => {{ const e = document.getElementById({element_id!r});"
            " if (!e) return false; e.click(); return true; })()"
        )
        if not found:
            raise BrowserError(f"no element with id {element_id!r} at {await self.url()}")
        if navigates:
            await self._wait_event("Page.loadEventFired", mark, timeout)

    async def text(self, element_id: str | None = None) -> str:
        """The visible text of an element, or of the whole body."""
        target = (
            "document.body" if element_id is None else f"document.getElementById({element_id!r})"
        )
        value = await self.evaluate(
            f"(() => {{ const e = {target}; return e ? e.innerText : null; }})()"
        )
        if value is None:
            raise BrowserError(f"no element with id {element_id!r}")
        return str(value)

    async def url(self) -> str:
        """The tab's current URL (from the browser, not the page, so it works mid-load)."""
        info = await self._send("Target.getTargetInfo", {"targetId": self._target_id}, browser=True)
        return str(info["targetInfo"]["url"])

    async def close(self) -> None:
        """Ask Chromium to exit and wait for it; kill its process group if it hangs."""
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(BrowserError, aiohttp.ClientError, ConnectionError):
                await self._send("Browser.close", browser=True, timeout=5.0)
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._http is not None:
            await self._http.close()
        process = self._process
        try:
            await asyncio.wait_for(process.wait(), 10.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        self._log.close()
        self._workdir.cleanup()

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
