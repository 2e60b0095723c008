"""VCClient: one page, every page of a meeting, every participant of a meeting.

::

    async with VCClient(AppCredentials("cli_...", "...")) as client:
        page = await client.participant_list(query)           # one request
        async for page in client.pages(query): ...            # follows page tokens
        async for person in client.participants(query): ...   # items across pages

The client owns one aiohttp session (or borrows the caller's), one token provider and
one rate-limiter handle; all of them live between ``__aenter__`` and ``__aexit__``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from types import TracebackType
from typing import Final, TypeVar

import aiohttp

from ._clock import Clock, loop_time
from ._constants import (
    API_MEETING_LIST,
    API_PARTICIPANT_LIST,
    FEISHU_BASE_URL,
    LOGGER_NAME,
    MAX_ANSWER_BYTES,
    MAX_MEETING_LIST_RANGE_SECONDS,
    PAGE_SIZE_ITER_DEFAULT,
)
from ._endpoints import MEETING_LIST, PARTICIPANT_LIST, Endpoint
from ._paging import ItemIterator, PageCursor, PageIterator
from ._query_strings import QueryStrings, page_token_param, query_params
from ._retry import Retries
from ._stats import ClientStats
from ._transport import USER_AGENT, Timeouts, Transport
from ._validate import base_url as check_base_url
from ._validate import positive_int
from .auth import Auth, TokenProvider, token_provider_for
from .discovery import DiscoveryPosition, MeetingIterator, find_meetings
from .fanout import FanOut, Queries, Resume
from .meetings import Meeting, MeetingListPage, MeetingListQuery
from .models import (
    MeetingQuery,
    Participant,
    ParticipantPage,
    validate_page_size,
)
from .ratelimit import LimitKey, Limits, OpenLimits, Pacing, RateLimit, RateLimiter

__all__ = ["VCClient"]

logger = logging.getLogger(LOGGER_NAME)

_DEFAULT_LIMITS: Final = Limits()
_DEFAULT_RETRIES: Final = Retries()
_DEFAULT_TIMEOUTS: Final = Timeouts()

T = TypeVar("T")


class VCClient:
    """Async client for the VC data APIs; use it as ``async with``.

    ``auth`` is how it authenticates: :class:`~feishu_vc_async.auth.AppCredentials` (the
    client fetches and refreshes the app's tenant tokens), any
    :class:`~feishu_vc_async.auth.TokenProvider` (a user session, a store app's tenant,
    a user token with your refresh callback), or an access token you hold (``t-…`` or
    ``u-…``).

    ``limits`` is each API's budget (:class:`~feishu_vc_async.ratelimit.Limits`: the
    gateway counts per API, app and tenant; 100 per 60 s each by default, paced by an
    in-process limiter every client of the same app in this event loop shares, or by a
    limiter you give, a Redis one say, never closed here). ``retries``: how transient
    failures are retried; ``timeouts``: connect and total; ``max_answer_bytes``: the
    largest answer body read; ``session``: a caller's aiohttp session (never closed
    here); ``clock``: where the client and the token provider it builds read time (the
    running loop's clock by default; see ``_clock``).
    """

    def __init__(
        self,
        auth: Auth,
        *,
        base_url: str = FEISHU_BASE_URL,
        limits: Limits = _DEFAULT_LIMITS,
        retries: Retries = _DEFAULT_RETRIES,
        timeouts: Timeouts = _DEFAULT_TIMEOUTS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = loop_time,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.clock = clock
        self._token_provider = token_provider_for(auth, clock=clock)
        for name, value, kind in (
            ("limits", limits, Limits),
            ("retries", retries, Retries),
            ("timeouts", timeouts, Timeouts),
        ):
            if not isinstance(value, kind):
                raise TypeError(f"{name}: must be a {kind.__name__}, got {type(value).__name__}")
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(f"session: must be an aiohttp.ClientSession, got {type(session)}")
        self.limits = limits
        self.retries = retries
        self.timeouts = timeouts
        self.max_answer_bytes = positive_int("max_answer_bytes", max_answer_bytes)
        self.stats = ClientStats(clock)
        self._parent: VCClient | None = None  # set on a tenant view (for_tenant)
        self._session_arg = session
        self._transport: Transport | None = None
        self._open_limits: OpenLimits | None = None
        self._query_strings = QueryStrings()

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def token_provider(self) -> TokenProvider:
        return self._token_provider

    @property
    def limit_key(self) -> LimitKey:
        """participant_list's budget of this client: its provider's identity and tenant."""
        provider = self._token_provider
        return LimitKey(API_PARTICIPANT_LIST, provider.identity, provider.tenant)

    @property
    def rate_limit(self) -> RateLimit | None:
        """The limit participant_list is paced to (``None``: not limited)."""
        return self.limits.rate(API_PARTICIPANT_LIST)

    @property
    def meeting_list_rate_limit(self) -> RateLimit | None:
        """The limit meeting_list is paced to (``None``: not limited)."""
        return self.limits.rate(API_MEETING_LIST)

    @property
    def limiter(self) -> RateLimiter | None:
        """participant_list's limiter while open (``None``: not limited, or closed)."""
        return self.limiter_for(API_PARTICIPANT_LIST)

    def limiter_for(self, bucket: str) -> RateLimiter | None:
        """The limiter pacing ``bucket`` (an API's name) while open; ``None`` when that
        API is not limited or the client is closed."""
        opened = (self._parent or self)._open_limits
        return None if opened is None else opened.limiters.get(bucket)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session in use while open."""
        transport = self._current_transport()
        return transport.session if transport is not None else None

    @property
    def is_open(self) -> bool:
        return self._current_transport() is not None

    def _current_transport(self) -> Transport | None:
        return (self._parent or self)._transport

    def for_tenant(self, tenant_key: str) -> VCClient:
        """This client acting for tenant ``tenant_key`` of a store app.

        The view shares this client's connection pool, limiter, counters and retry
        settings, and uses that tenant's token and rate-limit bucket (the provider's
        ``for_tenant(tenant_key)``, e.g. a
        :class:`~feishu_vc_async.auth.StoreAppTokenProvider`). It works while this
        client is open and needs no closing; make as many as there are tenants.
        """
        make = getattr(self._token_provider, "for_tenant", None)
        if make is None:
            raise TypeError(
                "for_tenant: the client's token provider has no tenants "
                "(use a StoreAppTokenProvider)"
            )
        provider = make(tenant_key)
        if not isinstance(provider, TokenProvider):
            raise TypeError("for_tenant: the provider's for_tenant() must give a TokenProvider")
        view = copy.copy(self)
        view._token_provider = provider
        view._parent = self._parent if self._parent is not None else self
        view._transport = None
        return view

    async def __aenter__(self) -> VCClient:
        if self._parent is not None:
            raise RuntimeError("a tenant view is not entered: enter the client it came from")
        if self._transport is not None:
            raise RuntimeError("VCClient is already open; enter it once at a time")
        self._open_limits = opened = OpenLimits(self.limits)
        session = self._session_arg
        owns_session = session is None
        if session is None:
            session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        self._transport = Transport(
            session=session,
            owns_session=owns_session,
            base_url=self.base_url,
            token_provider=self._token_provider,
            limiters=opened.limiters,
            retries=self.retries,
            timeouts=self.timeouts,
            max_answer_bytes=self.max_answer_bytes,
            stats=self.stats,
            clock=self.clock,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what the client owns (its session, its limiter handle); idempotent. A
        tenant view owns nothing: closing it does nothing."""
        transport, self._transport = self._transport, None
        opened, self._open_limits = self._open_limits, None
        try:
            if opened is not None:
                await opened.aclose()
        finally:
            if transport is not None:
                await transport.aclose()

    def _open(self) -> Transport:
        transport = self._current_transport()
        if transport is None:
            raise RuntimeError(
                "VCClient is not open: use it as `async with VCClient(...) as client:`"
            )
        return transport

    def assume_recent_requests(self) -> None:
        """Pace each limited API as if this client had just sent a request: its first
        request waits one pacing interval and the burst's tolerance (1.25 intervals by
        default: 0.76 s at 100 per minute). A process that continues one killed moments
        before (a resumed export, a command run again) then cannot go over the limit
        with the requests that one sent: a process paced so never holds more than that
        much in reserve after its last request, whenever it died."""
        transport = self._open()
        now = asyncio.get_running_loop().time()
        for bucket in self.limits.budgets():
            rate = self.limits.rate(bucket)
            if rate is not None:
                pacing = Pacing.of(rate)
                transport.hold(bucket, now + pacing.burst * pacing.interval)

    # --- requests ----------------------------------------------------------------------

    async def call(
        self,
        endpoint: Endpoint[T],
        *,
        params: Mapping[str, str] | None = None,
        json: object = None,
        secrets: tuple[str, ...] = (),
    ) -> T:
        """Any endpoint (``feishu_vc_async._endpoints``) through this client's token,
        limiter bucket and bounded retry loop; its decoded value or a typed error.
        ``secrets`` are scrubbed from every text of the answer an error keeps."""
        return await self._open().call(
            endpoint, params=params, json=json, secrets=secrets, provider=self._token_provider
        )

    async def participant_list(
        self,
        query: MeetingQuery,
        *,
        page_size: int = PAGE_SIZE_ITER_DEFAULT,
        page_token: str | None = None,
    ) -> ParticipantPage:
        """One page (one request, retried on transient failures)."""
        transport = self._open()
        params = self._query_strings.checked(query, page_size)
        token = page_token_param(page_token)
        if token is not None:
            params = {**params, "page_token": token}
        provider = self._token_provider
        return await transport.call(PARTICIPANT_LIST, params=params, provider=provider)

    def pages(
        self,
        query: MeetingQuery,
        *,
        page_size: int = PAGE_SIZE_ITER_DEFAULT,
        page_token: str | None = None,
    ) -> PageIterator[ParticipantPage]:
        """Every page of ``query`` from ``page_token`` on, following the server's tokens.

        Stops on ``has_more == false``, on a missing or empty token, and on a token seen
        before (a looping server must not make an endless loop). The query is validated
        here, before iteration starts. Leaving the loop early leaves nothing to clean up;
        ``aclose()`` or ``async with`` ends the iterator explicitly.
        """
        base = query_params(query, page_size)

        async def fetch(token: str | None) -> ParticipantPage:
            params = base if token is None else {**base, "page_token": token}
            return await self.call(PARTICIPANT_LIST, params=params)

        cursor = PageCursor(f"meeting {query.meeting_no}", page_token_param(page_token))
        return PageIterator(fetch, cursor)

    def participants(
        self, query: MeetingQuery, *, page_size: int = PAGE_SIZE_ITER_DEFAULT
    ) -> ItemIterator[ParticipantPage, Participant]:
        """Every participant of ``query``, across all its pages (see :meth:`pages`)."""
        return ItemIterator(self.pages(query, page_size=page_size), _participants_of)

    # --- meetings (meeting_list) -------------------------------------------------------

    async def meeting_list(
        self,
        query: MeetingListQuery,
        *,
        page_size: int = PAGE_SIZE_ITER_DEFAULT,
        page_token: str | None = None,
    ) -> MeetingListPage:
        """One page of meeting_list (one request of its own budget, retried on transient
        failures). The range may be at most a year: :meth:`meetings` splits longer ones."""
        transport = self._open()
        params = _checked_listing(query, whole_range=False).to_params()
        params["page_size"] = str(validate_page_size(page_size))
        token = page_token_param(page_token)
        if token is not None:
            params["page_token"] = token
        return await transport.call(MEETING_LIST, params=params, provider=self._token_provider)

    def meetings(
        self,
        query: MeetingListQuery,
        *,
        page_size: int = PAGE_SIZE_ITER_DEFAULT,
        window_seconds: int = MAX_MEETING_LIST_RANGE_SECONDS,
        position: DiscoveryPosition | None = None,
        seen: Iterable[str] = (),
    ) -> MeetingIterator:
        """Every meeting of ``query``'s range, of any length, each once (see
        :class:`~feishu_vc_async.discovery.MeetingIterator`): windows of at most
        ``window_seconds`` (a year, the most one request may ask for), every page, repeats
        dropped by :attr:`Meeting.key`. ``position`` and ``seen`` continue an earlier
        listing (with the same windows). Validated here, before any request."""
        _checked_listing(query, whole_range=True)
        size = str(validate_page_size(page_size))

        async def fetch(window: MeetingListQuery, token: str | None) -> MeetingListPage:
            params = {**window.to_params(), "page_size": size}
            if token is not None:
                params["page_token"] = token
            return await self.call(MEETING_LIST, params=params)

        return MeetingIterator(
            fetch,
            query,
            window_seconds=positive_int("window_seconds", window_seconds),
            position=position,
            seen=seen,
        )

    async def find_meetings(
        self,
        meeting_no: str,
        start: int | datetime | date,
        end: int | datetime | None = None,
        *,
        tz: tzinfo = UTC,
        ongoing: bool = True,
    ) -> list[Meeting]:
        """The meetings numbered ``meeting_no`` in a range, by start time: a whole day
        (``start`` a ``date``, in ``tz``) or ``start``..``end`` (unix seconds or aware
        datetimes). Ended meetings and, with ``ongoing``, ongoing ones. A number recurs:
        more than one meeting may match; each one's :meth:`Meeting.query` reads it."""
        return await find_meetings(self.meetings, meeting_no, start, end, tz=tz, ongoing=ongoing)

    def fan_out(
        self,
        queries: Queries,
        *,
        concurrency: int | None = None,
        page_size: int = PAGE_SIZE_ITER_DEFAULT,
        fail_fast: bool = False,
        resume: Resume | None = None,
        buffer_size: int | None = None,
        retry_failed: bool = False,
        expected_rows: Callable[[MeetingQuery], int | None] | None = None,
    ) -> FanOut:
        """Many meetings at once: ``async with client.fan_out(queries) as results:``
        then ``async for item in results`` (see :class:`~feishu_vc_async.fanout.FanOut`).
        """
        return FanOut(
            self,
            queries,
            concurrency=concurrency,
            page_size=page_size,
            fail_fast=fail_fast,
            resume=resume,
            buffer_size=buffer_size,
            retry_failed=retry_failed,
            expected_rows=expected_rows,
        )

    def __repr__(self) -> str:
        who = f"identity={self._token_provider.identity!r}"
        tenant = self._token_provider.tenant
        if tenant:
            who += f" tenant={tenant!r}"
        state = "open" if self.is_open else "closed"
        return f"<VCClient base_url={self.base_url!r} {who} {state}>"


def _participants_of(page: ParticipantPage) -> list[Participant]:
    return page.participants


def _checked_listing(query: object, *, whole_range: bool) -> MeetingListQuery:
    if not isinstance(query, MeetingListQuery):
        raise TypeError(f"query: must be a MeetingListQuery, got {type(query).__name__}")
    return query.validate(whole_range=whole_range)
