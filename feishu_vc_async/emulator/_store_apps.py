"""Store apps: app_ticket issue, rotation and push.

A store app gets its app access token with an ``app_ticket`` that the platform pushes
to the app's event endpoint. Here every store app has one current ticket. Issuing a new
one (a resend, or :meth:`TicketBook.issue`) leaves the previous tickets valid for
``grace`` seconds more, then they are stale (10012); a rotation with ``grace=0`` makes
them stale at once, which is how a test forces the client through resend-and-retry.
Time is monotonic seconds passed in by the caller. The book also knows where each app's
tickets are pushed: its own URL, else the emulator's ``ticket_callback_url``.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from .._constants import LOGGER_NAME
from .._validate import non_negative_seconds
from ._oauth import LOOPBACK_HOSTS
from ._options import AppTickets

__all__ = ["StoreApp", "TicketBook", "check_loopback_url", "push_ticket"]

log = logging.getLogger(LOGGER_NAME + ".emulator")

_PUSH_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


@dataclass(frozen=True, slots=True)
class StoreApp:
    """A registered store app: its credentials and the tenants that installed it."""

    app_id: str
    app_secret: str = field(repr=False)
    tenant_keys: tuple[str, ...]


@dataclass(slots=True)
class _Ticket:
    value: str
    stale_at: float = math.inf


class TicketBook:
    """The app tickets of every store app (the current one and those still in grace), and
    where they are pushed."""

    def __init__(self, options: AppTickets) -> None:
        non_negative_seconds("ticket_grace", options.ticket_grace)
        self.grace = options.ticket_grace
        self.callback_url = options.ticket_callback_url  # of apps without their own
        self._urls: dict[str, str] = {}
        self._tickets: dict[str, list[_Ticket]] = {}
        self._history: list[str] = []  # every ticket ever issued, for leak checks

    def push_to(self, app_id: str, url: str) -> None:
        """Push ``app_id``'s tickets to ``url`` (on 127.0.0.1) rather than the default."""
        self._urls[app_id] = check_loopback_url(url)

    def url(self, app_id: str) -> str | None:
        """Where ``app_id``'s tickets are pushed; None: nowhere."""
        url = self._urls.get(app_id) or self.callback_url
        return None if url is None else check_loopback_url(url)

    def current(self, app_id: str, now: float) -> str:
        """The app's current ticket (issuing the first one if it has none yet)."""
        tickets = self._tickets.get(app_id)
        return tickets[-1].value if tickets else self.issue(app_id, now)

    def issue(self, app_id: str, now: float, *, grace: float | None = None) -> str:
        """A new current ticket; the older ones go stale ``grace`` seconds from now."""
        until = now + (self.grace if grace is None else grace)
        tickets = [t for t in self._tickets.get(app_id, ()) if t.stale_at > now]
        for ticket in tickets:
            ticket.stale_at = min(ticket.stale_at, until)
        tickets.append(_Ticket(secrets.token_urlsafe(24)))
        self._tickets[app_id] = tickets
        self._history.append(tickets[-1].value)
        return tickets[-1].value

    def issued(self) -> list[str]:
        """Every ticket ever issued, of every app, in order."""
        return list(self._history)

    def valid(self, app_id: str, ticket: str, now: float) -> bool:
        return any(
            secrets.compare_digest(t.value, ticket) and now < t.stale_at
            for t in self._tickets.get(app_id, ())
        )


def check_loopback_url(url: str) -> str:
    """``url`` if it is an http(s) URL on a loopback host, else ValueError: the emulator
    sends traffic to 127.0.0.1 (or localhost) only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"ticket_callback_url={url!r}: must be an http URL on 127.0.0.1")
    return url


# What a ticket push reads of the callback's answer, at most.
_ANSWER_READ = 64 * 1024


async def push_ticket(url: str, app_id: str, ticket: str) -> None:
    """POST the app_ticket event to ``url`` as the platform does; a failure is logged."""
    event = {
        "type": "event_callback",
        "event": {"app_id": app_id, "app_ticket": ticket, "type": "app_ticket"},
    }
    try:
        async with (
            aiohttp.ClientSession(timeout=_PUSH_TIMEOUT) as session,
            session.post(url, json=event) as response,
        ):
            # Only the status matters; a callback that answers without end must not
            # grow the emulator, so at most a little of its body is read.
            await response.content.read(_ANSWER_READ)
            if response.status >= 300:
                log.warning("app_ticket push to %s: HTTP %d", url, response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("app_ticket push to %s failed: %s", url, type(exc).__name__)
