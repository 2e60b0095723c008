"""Where a store app's app_ticket comes from, and the helper that stores a pushed one.

The platform pushes a new app_ticket to the app's event endpoint about every hour (and
after ``app_ticket/resend``). The app's web handler gives the event body to
:func:`handle_app_ticket_event`, which stores the ticket in a sink; token providers in
any process read it from the same place through :class:`AppTicketSource`:

* :class:`MemoryTicketStore`: the handler and the provider share a process;
* :class:`FileTicketStore`: a file (owner-only, replaced atomically), e.g. for the CLI;
* :class:`~feishu_vc_async.auth.RedisTicketStore`: a Redis key, for many processes;
* any callable returning the ticket (or an awaitable of it), via :func:`ticket_source`.

Each says where its ticket is in words (``where``: "the file /run/app_ticket"), which
messages use: :func:`ticket_place` for any source.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from .._files import atomic_write
from ..errors import AppTicketError, TokenStoreError

__all__ = [
    "AppTicketSink",
    "AppTicketSource",
    "CallableTicketSource",
    "FileTicketStore",
    "MemoryTicketStore",
    "StaticTicket",
    "TicketCallable",
    "handle_app_ticket_event",
    "ticket_place",
    "ticket_source",
]


# A callable that gives the ticket, sync or async.
TicketCallable = Callable[[], str | Awaitable[str | None] | None]


@runtime_checkable
class AppTicketSource(Protocol):
    """Gives the current app_ticket (``None`` while there is none yet)."""

    async def get(self) -> str | None: ...


@runtime_checkable
class AppTicketSink(Protocol):
    """Keeps the app_ticket the platform pushed last."""

    async def put(self, ticket: str) -> None: ...


def ticket_place(source: object) -> str:
    """Where ``source`` keeps its ticket, in words, for messages: its ``where``, or
    "your ticket source" for one that does not say."""
    where = getattr(source, "where", None)
    return where if isinstance(where, str) and where else "your ticket source"


class MemoryTicketStore:
    """The ticket in this process (the event handler and the provider share it)."""

    __slots__ = ("_ticket",)

    where = "this process's memory"

    def __init__(self, ticket: str | None = None) -> None:
        self._ticket = ticket or None

    async def get(self) -> str | None:
        return self._ticket

    async def put(self, ticket: str) -> None:
        self._ticket = ticket

    def __repr__(self) -> str:
        return "MemoryTicketStore()"


class FileTicketStore:
    """The ticket in a file (its whole content, whitespace stripped); written owner-only
    and atomically, so a reader never sees half a ticket, nor an empty file."""

    __slots__ = ("path",)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def where(self) -> str:
        return f"the file {self.path}"

    def read(self) -> str | None:
        """The ticket now; ``None`` while the file does not exist (the event handler has
        not written one yet). A file holding nothing is :class:`AppTicketError` at once:
        ``put`` never leaves one, so waiting for a push would not fill it."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenStoreError(f"cannot read the app_ticket file {self.path}: {exc}") from None
        if not text:
            raise AppTicketError(
                http_status=0,
                code=0,
                msg=f"the app_ticket file {self.path} is empty (it should hold the store "
                "app's current app_ticket and nothing else)",
            )
        return text

    async def get(self) -> str | None:
        return self.read()

    async def put(self, ticket: str) -> None:
        try:
            atomic_write(self.path, ticket.encode("utf-8") + b"\n")
        except OSError as exc:
            raise TokenStoreError(
                f"cannot write the app_ticket file {self.path}: {exc.strerror}"
            ) from None

    def __repr__(self) -> str:
        return f"FileTicketStore({str(self.path)!r})"


class StaticTicket:
    """One ticket that never changes (an environment variable, say); ``name`` says
    where it came from in messages (``"$FEISHU_APP_TICKET"``)."""

    __slots__ = ("_ticket", "name")

    def __init__(self, ticket: str, name: str = "the fixed value given") -> None:
        if not isinstance(ticket, str) or not ticket.strip():
            raise ValueError(f"{name}: must be a non-empty app_ticket")
        self._ticket = ticket.strip()
        self.name = name

    @property
    def where(self) -> str:
        return self.name

    async def get(self) -> str | None:
        return self._ticket

    def __repr__(self) -> str:
        return self.name


class CallableTicketSource:
    """A callable returning the ticket (or ``None``), sync or async."""

    __slots__ = ("_fn",)

    def __init__(self, fn: TicketCallable) -> None:
        if not callable(fn):
            raise TypeError("app_ticket source: must be callable")
        self._fn = fn

    @property
    def where(self) -> str:
        return f"what {getattr(self._fn, '__qualname__', 'your callable')}() returns"

    async def get(self) -> str | None:
        value = self._fn()
        if inspect.isawaitable(value):
            value = await value
        if value is not None and not isinstance(value, str):
            raise TypeError(f"app_ticket source returned {type(value).__name__}, not str")
        return value or None

    def __repr__(self) -> str:
        return f"CallableTicketSource({getattr(self._fn, '__qualname__', 'callable')})"


def ticket_source(source: AppTicketSource | TicketCallable) -> AppTicketSource:
    """``source`` as an :class:`AppTicketSource` (a callable is wrapped)."""
    if isinstance(source, AppTicketSource):
        return source
    if callable(source):
        return CallableTicketSource(source)
    raise TypeError("tickets: must be an AppTicketSource (get()) or a callable")


async def handle_app_ticket_event(
    event: Mapping[str, object] | bytes | str,
    sink: AppTicketSink,
    *,
    app_id: str | None = None,
) -> bool:
    """Store the ticket of a pushed ``app_ticket`` event and return True; False for any
    other event (the caller handles those). The body is the platform's
    ``{"type": "event_callback", "event": {"app_id", "app_ticket", "type": "app_ticket"}}``
    as a mapping or as the raw JSON. ``app_id``: refuse another app's ticket.
    ``ValueError`` for a malformed app_ticket event (nothing is stored)."""
    if isinstance(event, bytes | str):
        try:
            event = json.loads(event)
        except ValueError:
            raise ValueError("app_ticket event: the body is not JSON") from None
    if not isinstance(event, Mapping):
        raise ValueError("app_ticket event: the body must be a JSON object")
    if "encrypt" in event:
        raise ValueError("app_ticket event: the body is encrypted; decrypt it first")
    inner = event.get("event")
    if event.get("type") != "event_callback" or not isinstance(inner, Mapping):
        return False
    if inner.get("type") != "app_ticket":
        return False
    ticket, sender = inner.get("app_ticket"), inner.get("app_id")
    if not isinstance(ticket, str) or not ticket.strip():
        raise ValueError("app_ticket event: event.app_ticket is missing or empty")
    if app_id is not None and sender != app_id:
        raise ValueError(f"app_ticket event of app {sender!r}; this handler is for {app_id!r}")
    await sink.put(ticket.strip())
    return True
