"""``feishu-vc sync``'s event options: a webhook served while the sync runs
(``--webhook HOST:PORT``), the long connection (``--events``), and how events are taken
(``--settle``, ``--reconcile``). Secrets come from ``--encrypt-key`` /
``--verification-token`` or, better (a command line is visible to every user of the
machine), ``FEISHU_ENCRYPT_KEY`` / ``FEISHU_VERIFICATION_TOKEN``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from .._timeparse import parse_span
from ..auth import AppCredentials
from ..errors import ConfigError
from ..events import EventError, LongConnection, WebhookReceiver
from ..sync import EventSync, Following, Taken
from ._options import ClientSettings

__all__ = ["EventSettings", "add_event_arguments", "event_settings", "follow", "taken_line"]


@dataclass(frozen=True, slots=True)
class EventSettings:
    """Where events come from (a webhook at ``host``:``port`` ``path``; the long
    connection), their secrets (kept out of the ``repr``), and how they are taken."""

    following: Following
    host: str | None = None
    port: int = 0
    path: str = "/"
    long_connection: bool = False
    encrypt_key: str | None = field(default=None, repr=False)
    verification_token: str | None = field(default=None, repr=False)

    @property
    def webhook(self) -> bool:
        return self.host is not None


def _span(option: str, text: str, *, zero: bool = False) -> float:
    seconds = parse_span(text)
    if seconds is None or seconds < 0 or (seconds == 0 and not zero):
        raise ConfigError(f"{option} {text!r}: must be a span such as 0s, 90s, 5m or 1h")
    return float(seconds)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--webhook {text!r}: must be HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def event_settings(
    args: argparse.Namespace, env: Mapping[str, str], client: ClientSettings
) -> EventSettings | None:
    """The event settings of ``sync``'s arguments; ``None`` when it follows none."""
    if args.webhook is None and not args.events:
        for option in ("webhook_path", "encrypt_key", "verification_token"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise ConfigError(f"{flag} needs --webhook")
        return None
    if args.once:
        raise ConfigError(
            "--once catches up and exits: it cannot follow events (--webhook/--events)"
        )
    following = Following(
        settle=_span("--settle", args.settle, zero=True),
        reconcile=_span("--reconcile", args.reconcile),
    )
    if args.events and not isinstance(client.auth, AppCredentials):
        raise ConfigError(
            "--events: the long connection is for a custom app's id and secret; "
            "store apps and user logins receive events by --webhook"
        )
    host, port, path = None, 0, args.webhook_path or "/"
    if args.webhook is not None:
        host, port = _host_port(args.webhook)
        if not path.startswith("/"):
            raise ConfigError(f"--webhook-path {path!r}: must start with /")
    encrypt_key = args.encrypt_key or env.get("FEISHU_ENCRYPT_KEY") or None
    token = args.verification_token or env.get("FEISHU_VERIFICATION_TOKEN") or None
    if host is not None and token is None:
        raise ConfigError(
            "--webhook needs the app's verification token (--verification-token or "
            "FEISHU_VERIFICATION_TOKEN): without it anyone could post meetings to it"
        )
    return EventSettings(following, host, port, path, args.events, encrypt_key, token)


def _receiver(settings: EventSettings, sync: EventSync) -> WebhookReceiver:
    try:
        return WebhookReceiver(
            verification_token=settings.verification_token,
            encrypt_key=settings.encrypt_key,
            on_ended=sync.put,
        )
    except (EventError, ValueError) as exc:
        raise ConfigError(f"--webhook: {exc}") from None


async def follow(
    settings: EventSettings,
    sync: EventSync,
    client: ClientSettings,
    said: Callable[[str], None],
) -> None:
    """Serve the webhook and run the long connection while ``sync`` follows, until it
    returns or is cancelled; a long connection that fails (bad credentials) stops it,
    raising ``LongConnectionError``. ``said`` is told where events come from."""
    async with _serving(settings, sync, client) as (sources, connection):
        said(" and ".join(sources))
        runs = [asyncio.ensure_future(sync.run())]
        if connection is not None:
            runs.append(asyncio.ensure_future(connection.run()))
        try:
            done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
        for run in done:
            run.result()


@contextlib.asynccontextmanager
async def _serving(
    settings: EventSettings, sync: EventSync, client: ClientSettings
) -> AsyncIterator[tuple[list[str], LongConnection | None]]:
    """The webhook served while the block runs, and the long connection to run;
    yields where events come from."""
    sources: list[str] = []
    connection = None
    async with contextlib.AsyncExitStack() as stack:
        if settings.host is not None:
            runner = web.AppRunner(
                _receiver(settings, sync).aiohttp_app(settings.path),
                access_log=None,
                handle_signals=False,
            )
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, settings.host, settings.port)
            try:
                await site.start()
            except OSError as exc:
                raise ConfigError(
                    f"--webhook {settings.host}:{settings.port}: {exc.strerror}"
                ) from None
            host, port = runner.addresses[0][:2]
            sources.append(f"webhook at http://{host}:{port}{settings.path}")
        if settings.long_connection:
            auth = client.auth
            assert isinstance(auth, AppCredentials)  # event_settings checked it
            connection = LongConnection(
                base_url=client.base_url,
                app_id=auth.app_id,
                app_secret=auth.app_secret,
                on_ended=sync.put,
            )
            sources.append("the long connection")
        yield sources, connection


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def taken_line(taken: Taken, *, where: str) -> str:
    """The summary of one take of meetings told ended by events."""
    run = taken.run
    failed = "" if run is None or not run.failures else f", {len(run.failures)} failed"
    requests = 0 if run is None or run.progress is None else run.progress.requests
    return (
        f"sync events: {_count(taken.due, 'event')} due, {taken.fetched} new, "
        f"{taken.held} already held, {taken.rows} participants → {where}{failed}, "
        f"{_count(requests, 'request')} in {taken.seconds:.1f} s"
    )


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    """``sync``'s event options."""
    events = parser.add_argument_group("events (each meeting taken seconds after it ends)")
    events.add_argument(
        "--webhook",
        metavar="HOST:PORT",
        help="serve the app's event request URL here while syncing (store apps: the only way)",
    )
    events.add_argument("--webhook-path", metavar="PATH", help="its path (default /)")
    events.add_argument(
        "--encrypt-key",
        metavar="KEY",
        help="the app's Encrypt Key (default: FEISHU_ENCRYPT_KEY); bodies decrypted and "
        "signatures checked",
    )
    events.add_argument(
        "--verification-token",
        metavar="TOKEN",
        help="the app's Verification Token (default: FEISHU_VERIFICATION_TOKEN)",
    )
    events.add_argument(
        "--events",
        action="store_true",
        help="receive events over the long connection (custom apps; no public URL needed)",
    )
    events.add_argument(
        "--settle",
        default="5s",
        metavar="SPAN",
        help="from an event to its meeting's fetch (default 5s)",
    )
    events.add_argument(
        "--reconcile",
        default="1h",
        metavar="SPAN",
        help="between range cycles that heal events never sent (default 1h; replaces "
        "--interval when following events)",
    )
