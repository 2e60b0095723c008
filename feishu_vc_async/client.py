"""VCClient: one page, every page of a meeting, every participant of a meeting.

::

    async with VCClient(app_id="cli_...", app_secret="...") as client:
        page = await client.participant_list(query)           # one request
        async for page in client.pages(query): ...            # follows page tokens
        async for person in client.participants(query): ...   # items across pages

The client owns one aiohttp session (or borrows the caller's), one token provider and
one rate-limiter handle; all of them live between ``__aenter__`` and ``__aexit__``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final

import aiohttp

from ._clock import Clock, loop_time
from ._constants import (
    API_PARTICIPANT_LIST,
    CONNECT_TIMEOUT,
    FEISHU_BASE_URL,
    LOGGER_NAME,
    MAX_RETRIES,
    PAGE_SIZE_ITER_DEFAULT,
    TOTAL_TIMEOUT,
)
from ._endpoints import PARTICIPANT_LIST
from ._paging import ItemIterator, PageCursor, PageIterator
from ._retry import DefaultRetryPolicy, RetryPolicy
from ._stats import ClientStats
from ._transport import USER_AGENT, Transport
from ._validate import base_url as check_base_url
from ._validate import non_negative_int, positive_seconds
from .auth import (
    StaticTokenProvider,
    TenantTokenProvider,
    TokenProvider,
    UserTokenProvider,
)
from .fanout import FanOut, Queries, Resume
from .models import MeetingQuery, Participant, ParticipantPage, validate_page_size
from .ratelimit import LimitKey, LocalRateLimiter, RateLimit, RateLimiter

__all__ = ["VCClient"]

logger = logging.getLogger(LOGGER_NAME)

_DEFAULT_RATE: Final = RateLimit()


class VCClient:
    """Async client for ``vc/v1/participant_list``; use it as ``async with``.

    Exactly one way to authenticate:

    * ``app_id`` + ``app_secret``: tenant tokens fetched (and refreshed) by the client;
    * ``access_token``: a token the caller holds (``t-`` or ``u-``), optionally with
      ``refresh_user_token``, an async callable returning a new user token;
    * ``token_provider``: any :class:`~feishu_vc_async.auth.TokenProvider`.

    ``rate_limit`` (default 100 per 60 s) builds an in-process limiter shared by every
    client of the same app in this event loop; ``None`` disables limiting. A given
    ``limiter`` (a Redis one, say) replaces it, its own rate then being the client's
    :attr:`rate_limit`; it is never closed here, nor is a caller's ``session``.

    ``clock`` is where the client and the token provider it builds read time (the
    running loop's clock by default; see ``_clock``).
    """

    def __init__(
        self,
        *,
        app_id: str | None = None,
        app_secret: str | None = None,
        access_token: str | None = None,
        refresh_user_token: Callable[[], Awaitable[str]] | None = None,
        token_provider: TokenProvider | None = None,
        base_url: str = FEISHU_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        rate_limit: RateLimit | None = _DEFAULT_RATE,
        limiter: RateLimiter | None = None,
        retry_policy: RetryPolicy | None = None,
        max_retries: int = MAX_RETRIES,
        connect_timeout: float = CONNECT_TIMEOUT,
        total_timeout: float = TOTAL_TIMEOUT,
        clock: Clock = loop_time,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.app_id: str | None = None
        self.clock = clock
        self._token_provider = self._make_provider(
            app_id, app_secret, access_token, refresh_user_token, token_provider, clock
        )
        if isinstance(self._token_provider, TenantTokenProvider):
            self.app_id = self._token_provider.app_id
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(f"session: must be an aiohttp.ClientSession, got {type(session)}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(
                f"rate_limit: must be a RateLimit (or None to disable), got {type(rate_limit)}"
            )
        if limiter is not None and not isinstance(limiter, RateLimiter):
            raise TypeError("limiter: must implement the RateLimiter protocol")
        if retry_policy is not None and not callable(retry_policy):
            raise TypeError("retry_policy: must be a callable (error, attempt) -> RetryDecision")
        self.max_retries = non_negative_int("max_retries", max_retries)
        self._rate_limit = rate_limit
        self.timeout = aiohttp.ClientTimeout(
            total=positive_seconds("total_timeout", total_timeout),
            connect=positive_seconds("connect_timeout", connect_timeout),
        )
        self.stats = ClientStats(clock)
        self.limit_key = LimitKey(api=API_PARTICIPANT_LIST, identity=self._token_provider.identity)
        self._session_arg = session
        self._limiter_arg = limiter
        self._retry_policy: RetryPolicy = retry_policy or DefaultRetryPolicy()
        self._transport: Transport | None = None
        self._limiter: RateLimiter | None = None
        self._owns_limiter = False

    @staticmethod
    def _make_provider(
        app_id: str | None,
        app_secret: str | None,
        access_token: str | None,
        refresh_user_token: Callable[[], Awaitable[str]] | None,
        token_provider: TokenProvider | None,
        clock: Clock,
    ) -> TokenProvider:
        given = [
            name
            for name, value in (
                ("app_id/app_secret", app_id if app_id is not None else app_secret),
                ("access_token", access_token),
                ("token_provider", token_provider),
            )
            if value is not None
        ]
        if not given:
            raise ValueError(
                "credentials: pass app_id and app_secret, or access_token, or token_provider"
            )
        if len(given) > 1:
            raise ValueError(f"credentials: pass only one of {' / '.join(given)}")
        if refresh_user_token is not None and access_token is None:
            raise ValueError("refresh_user_token: only applies together with access_token")
        if token_provider is not None:
            if not isinstance(token_provider, TokenProvider):
                raise TypeError("token_provider: must implement the TokenProvider protocol")
            return token_provider
        if access_token is not None:
            if refresh_user_token is not None:
                return UserTokenProvider(access_token, refresh_user_token)
            return StaticTokenProvider(access_token)
        if app_id is None:
            raise ValueError("app_id: required together with app_secret")
        if app_secret is None:
            raise ValueError("app_secret: required together with app_id")
        return TenantTokenProvider(app_id, app_secret, clock=clock)

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def token_provider(self) -> TokenProvider:
        return self._token_provider

    @property
    def rate_limit(self) -> RateLimit | None:
        """The limit participant_list is paced to: the given limiter's own rate, else
        ``rate_limit`` (``None``: not limited)."""
        if self._limiter_arg is not None:
            return self._limiter_arg.rate
        return self._rate_limit

    @property
    def limiter(self) -> RateLimiter | None:
        """The limiter in use while open (None when limiting is disabled)."""
        return self._limiter

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session in use while open."""
        return self._transport.session if self._transport is not None else None

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    async def __aenter__(self) -> VCClient:
        if self._transport is not None:
            raise RuntimeError("VCClient is already open; enter it once at a time")
        limiter = self._limiter_arg
        owns_limiter = False
        if limiter is None and self._rate_limit is not None:
            limiter = LocalRateLimiter.shared(self._rate_limit)
            owns_limiter = True
        session = self._session_arg
        owns_session = session is None
        if session is None:
            session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        self._limiter = limiter
        self._owns_limiter = owns_limiter
        self._transport = Transport(
            session=session,
            owns_session=owns_session,
            base_url=self.base_url,
            token_provider=self._token_provider,
            limiters={} if limiter is None else {API_PARTICIPANT_LIST: limiter},
            retry_policy=self._retry_policy,
            max_retries=self.max_retries,
            timeout=self.timeout,
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
        """Close what the client owns (its session, its limiter handle); idempotent."""
        transport, self._transport = self._transport, None
        limiter, owns_limiter = self._limiter, self._owns_limiter
        self._limiter, self._owns_limiter = None, False
        try:
            if limiter is not None and owns_limiter:
                await limiter.aclose()
        finally:
            if transport is not None:
                await transport.aclose()

    def _open(self) -> Transport:
        transport = self._transport
        if transport is None:
            raise RuntimeError(
                "VCClient is not open: use it as `async with VCClient(...) as client:`"
            )
        return transport

    # --- requests ----------------------------------------------------------------------

    @staticmethod
    def _params(query: MeetingQuery, page_size: int) -> dict[str, str]:
        """The request's query string; raises InvalidQueryError before any request."""
        if not isinstance(query, MeetingQuery):
            raise TypeError(f"query: must be a MeetingQuery, got {type(query).__name__}")
        query.validate()
        params = query.to_params()
        params["page_size"] = str(validate_page_size(page_size))
        return params

    @staticmethod
    def _check_page_token(page_token: object) -> str | None:
        if page_token is None or page_token == "":
            return None
        if not isinstance(page_token, str):
            raise TypeError(f"page_token: must be a string or None, got {type(page_token)}")
        return page_token

    async def participant_list(
        self,
        query: MeetingQuery,
        *,
        page_size: int = PAGE_SIZE_ITER_DEFAULT,
        page_token: str | None = None,
    ) -> ParticipantPage:
        """One page (one request, retried on transient failures)."""
        transport = self._open()
        params = self._params(query, page_size)
        token = self._check_page_token(page_token)
        if token is not None:
            params["page_token"] = token
        return await transport.call(PARTICIPANT_LIST, params=params)

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
        base = self._params(query, page_size)

        async def fetch(token: str | None) -> ParticipantPage:
            params = base if token is None else {**base, "page_token": token}
            return await self._open().call(PARTICIPANT_LIST, params=params)

        cursor = PageCursor(f"meeting {query.meeting_no}", self._check_page_token(page_token))
        return PageIterator(fetch, cursor)

    def participants(
        self, query: MeetingQuery, *, page_size: int = PAGE_SIZE_ITER_DEFAULT
    ) -> ItemIterator[ParticipantPage, Participant]:
        """Every participant of ``query``, across all its pages (see :meth:`pages`)."""
        return ItemIterator(self.pages(query, page_size=page_size), _participants_of)

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
        )

    def __repr__(self) -> str:
        who = (
            f"app_id={self.app_id!r}"
            if self.app_id is not None
            else f"identity={self._token_provider.identity!r}"
        )
        state = "open" if self._transport is not None else "closed"
        return f"<VCClient base_url={self.base_url!r} {who} {state}>"


def _participants_of(page: ParticipantPage) -> list[Participant]:
    return page.participants
