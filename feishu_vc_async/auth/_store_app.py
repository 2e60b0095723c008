"""Tokens of a store app: one app installed by many tenants, a budget per tenant.

app_ticket (pushed by the platform, read from an :class:`AppTicketSource`) →
``app_access_token`` (one per app, cached) → ``tenant_access_token`` per ``tenant_key``
(cached per tenant). Each cache is refilled by one request however many callers wait
(:class:`~.._singleflight.SingleFlight`), and every request goes through the client's
loop like any other.

A stale ticket (10012) is answered by asking the platform to push a new one
(``app_ticket/resend``) and waiting, at most ``ticket_wait`` seconds, until the ticket
source gives a different ticket; the app's event handler must be feeding it (see
:func:`~feishu_vc_async.auth.handle_app_ticket_event`). A source without a ticket yet
is treated the same way.

The provider made with a ``tenant_key`` serves that tenant; :meth:`for_tenant` gives
the provider of another tenant sharing the app's caches, and ``client.for_tenant(key)``
a client view that uses it over the same connection pool.
"""

from __future__ import annotations

import asyncio
import logging

from .._clock import Clock, loop_time
from .._constants import APP_TICKET_WAIT, LOGGER_NAME
from .._endpoints import APP_ACCESS_TOKEN, APP_TICKET_RESEND, STORE_TENANT_TOKEN
from .._error_codes import APP_TOKEN_INVALID_CODE, TENANT_TOKEN_RETRY_CODES
from .._singleflight import SingleFlight
from .._validate import non_empty, non_negative_seconds
from ..errors import AppTicketError, AuthError
from ._protocol import Sender
from ._shared_tokens import Fetched, SharedTokens
from ._tenant import cache_deadline
from ._tickets import AppTicketSource, TicketCallable, ticket_place, ticket_source

__all__ = ["StoreAppTokenProvider"]

logger = logging.getLogger(LOGGER_NAME)

_POLL_FIRST = 0.05
_POLL_MAX = 1.0


class _AppTokens:
    """What every tenant of one store app shares: credentials, ticket, app token, and
    the tenant tokens by key."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        tickets: AppTicketSource,
        ticket_wait: float,
        clock: Clock,
        shared: SharedTokens | None,
    ) -> None:
        self.app_id = app_id
        self._secret = app_secret
        self.tickets = tickets
        self._wait = ticket_wait
        self._clock = clock
        self.shared = shared
        self._app: Fetched | None = None
        self._app_flight: SingleFlight[str] = SingleFlight()
        self._tenants: dict[str, Fetched] = {}
        self._tenant_flights: dict[str, SingleFlight[str]] = {}

    # --- tenant tokens ----------------------------------------------------------------

    async def tenant_token(self, sender: Sender, tenant_key: str) -> str:
        cached = self._tenants.get(tenant_key)
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.token
        flight = self._tenant_flights.get(tenant_key)
        if flight is None:
            flight = self._tenant_flights[tenant_key] = SingleFlight()
        return await flight.run(lambda: self._refill_tenant(sender, tenant_key))

    def invalidate_tenant(self, tenant_key: str, token: str) -> None:
        cached = self._tenants.get(tenant_key)
        if cached is not None and cached.token == token:
            del self._tenants[tenant_key]
        if self.shared is not None:
            self.shared.refused(self.shared.tenant_key(self.app_id, tenant_key), token)

    async def _refill_tenant(self, sender: Sender, tenant_key: str) -> str:
        if self.shared is None:
            fetched = await self._fetch_tenant(sender, tenant_key)
        else:
            key = self.shared.tenant_key(self.app_id, tenant_key)
            fetched = await self.shared.token(
                key, lambda: self._fetch_tenant(sender, tenant_key), self._clock
            )
        self._tenants[tenant_key] = fetched
        return fetched.token

    async def _fetch_tenant(self, sender: Sender, tenant_key: str) -> Fetched:
        for last in (False, True):
            app_token = await self.app_token(sender)
            sender.stats.token_fetches += 1
            started = self._clock()
            try:
                answer = await sender.call(
                    STORE_TENANT_TOKEN,
                    json={"app_access_token": app_token, "tenant_key": tenant_key},
                    secrets=(app_token,),
                )
            except AuthError as exc:
                if exc.code == APP_TOKEN_INVALID_CODE and not last:
                    self._drop_app_token(app_token)  # expired early: one more, with a new one
                    continue
                raise
            token = answer.tenant_access_token
            assert token is not None  # the endpoint's answer has no value without it
            return Fetched(token, cache_deadline(started, answer.expire))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the app token -----------------------------------------------------------------

    async def app_token(self, sender: Sender) -> str:
        cached = self._app
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.token
        return await self._app_flight.run(lambda: self._refill_app(sender))

    def _drop_app_token(self, token: str) -> None:
        if self._app is not None and self._app.token == token:
            self._app = None
        if self.shared is not None:
            self.shared.refused(self.shared.app_key(self.app_id), token)

    async def _refill_app(self, sender: Sender) -> str:
        if self.shared is None:
            fetched = await self._fetch_app(sender)
        else:
            key = self.shared.app_key(self.app_id)
            fetched = await self.shared.token(key, lambda: self._fetch_app(sender), self._clock)
        self._app = fetched
        return fetched.token

    async def _fetch_app(self, sender: Sender) -> Fetched:
        ticket = await self.tickets.get()
        if ticket is None:
            ticket = await self._resend_and_wait(sender, None)
        try:
            return await self._app_token_with(sender, ticket)
        except AppTicketError as exc:
            logger.warning(
                "store app %s: the app_ticket was refused (code %d, log_id %s); asking the "
                "platform to push a new one",
                self.app_id,
                exc.code,
                exc.log_id or "-",
            )
            ticket = await self._resend_and_wait(sender, ticket)
            return await self._app_token_with(sender, ticket)

    async def _app_token_with(self, sender: Sender, ticket: str) -> Fetched:
        sender.stats.token_fetches += 1
        started = self._clock()
        answer = await sender.call(
            APP_ACCESS_TOKEN,
            json={"app_id": self.app_id, "app_secret": self._secret, "app_ticket": ticket},
            secrets=(self._secret, ticket),
        )
        token = answer.app_access_token
        assert token is not None  # the endpoint's answer has no value without it
        return Fetched(token, cache_deadline(started, answer.expire))

    async def _resend_and_wait(self, sender: Sender, stale: str | None) -> str:
        """Ask for a push, then poll the ticket source for a ticket other than ``stale``
        until ``ticket_wait`` has passed."""
        await sender.call(
            APP_TICKET_RESEND,
            json={"app_id": self.app_id, "app_secret": self._secret},
            secrets=(self._secret,),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        delay = _POLL_FIRST
        while True:
            ticket = await self.tickets.get()
            if ticket is not None and ticket != stale:
                logger.info("store app %s: a new app_ticket arrived", self.app_id)
                return ticket
            left = deadline - loop.time()
            if left <= 0:
                place = ticket_place(self.tickets)
                had = (
                    f"the app_ticket in {place} is stale, and no new one"
                    if stale is not None
                    else f"there is no app_ticket in {place}, and none"
                )
                raise AppTicketError(
                    http_status=0,
                    code=0,
                    msg=f"{had} came within {self._wait:g} s of a resend request",
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)


class StoreAppTokenProvider:
    """Tenant tokens of a store app, for ``tenant_key`` (see the module doc).

    ``tickets``: where the current app_ticket is read (an :class:`AppTicketSource`, or
    a callable returning it). ``ticket_wait``: seconds to wait for a pushed ticket after
    a resend request. ``clock`` times the caches (the running loop's by default).
    ``shared``: a :class:`~._shared_tokens.SharedTokens` through which every process
    using the same Redis shares the app token and each tenant's token.

    Without a ``tenant_key`` the provider only makes tenant providers
    (:meth:`for_tenant`); asking it for a token is an error.
    """

    __slots__ = ("_app", "tenant_key")

    refresh_codes: frozenset[int] = TENANT_TOKEN_RETRY_CODES

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        tickets: AppTicketSource | TicketCallable,
        *,
        tenant_key: str | None = None,
        ticket_wait: float = APP_TICKET_WAIT,
        clock: Clock = loop_time,
        shared: SharedTokens | None = None,
    ) -> None:
        wait = non_negative_seconds("ticket_wait", ticket_wait)
        self._app = _AppTokens(
            non_empty("app_id", app_id),
            non_empty("app_secret", app_secret),
            ticket_source(tickets),
            wait,
            clock,
            shared,
        )
        self.tenant_key = None if tenant_key is None else non_empty("tenant_key", tenant_key)

    def for_tenant(self, tenant_key: str) -> StoreAppTokenProvider:
        """The provider of tenant ``tenant_key``: the same app, ticket and caches."""
        view = object.__new__(StoreAppTokenProvider)
        view._app = self._app
        view.tenant_key = non_empty("tenant_key", tenant_key)
        return view

    @property
    def app_id(self) -> str:
        return self._app.app_id

    @property
    def identity(self) -> str:
        return self._app.app_id

    @property
    def tenant(self) -> str:
        return self.tenant_key or ""

    async def app_access_token(self, sender: Sender) -> str:
        """The app's ``app_access_token`` (cached; fetched with the current ticket)."""
        return await self._app.app_token(sender)

    async def token(self, sender: Sender) -> str:
        if self.tenant_key is None:
            raise ValueError(
                "StoreAppTokenProvider: no tenant_key; use provider.for_tenant(key) or "
                "client.for_tenant(key)"
            )
        return await self._app.tenant_token(sender, self.tenant_key)

    def invalidate(self, token: str) -> None:
        if self.tenant_key is not None:
            self._app.invalidate_tenant(self.tenant_key, token)

    def __repr__(self) -> str:
        return f"StoreAppTokenProvider(app_id={self.app_id!r}, tenant_key={self.tenant_key!r})"
