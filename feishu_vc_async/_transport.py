"""One pooled aiohttp session and the one bounded request loop every endpoint goes through.

Each attempt takes a token from the provider (a cached value on the hot path) when the
endpoint needs one, then a slot from the endpoint's rate-limit bucket right before the
send; sleeping for a retry happens outside both, so a waiting retry blocks nobody.
The answer is turned into a value or a typed error by ``_answers`` (pure); whether to
try again is the retry policy's call (pure), bounded by ``max_retries``.

A token the platform refuses (one of the provider's ``refresh_codes``) is invalidated
and the attempt repeated once with a fresh one. A provider that fetches tokens does so
through :meth:`Transport.call` as well (see ``auth``), so its request is retried, paced
and logged like any other; if it still fails, that failure is the caller's answer and
is not retried again by the request that needed the token.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Mapping
from typing import Final, TypeVar, cast

import aiohttp
from yarl import URL

from ._answers import RawResponse, read_answer
from ._clock import Clock, loop_time
from ._constants import LOGGER_NAME
from ._endpoints import Endpoint
from ._retry import RetryPolicy
from ._stats import ClientStats, EndpointStats
from .auth import TokenProvider, provider_tenant
from .errors import APIError, FeishuError, RateLimitedError, RequestTimeoutError, TransportError
from .models import JSON_ENCODER
from .ratelimit import LimitKey, OrderedRateLimiter, RateLimiter

__all__ = ["USER_AGENT", "Transport"]

logger = logging.getLogger(LOGGER_NAME)

USER_AGENT: Final = "feishu-vc-async/0.1 (+aiohttp)"
_JSON_HEADERS: Final = {
    "Content-Type": "application/json; charset=utf-8",
    "User-Agent": USER_AGENT,
}

T = TypeVar("T")

_UNKNOWN_OUTCOME: Final = " (the request may have been processed; not sent again)"


class Transport:
    """The session wrapper of one open client.

    ``limiters`` maps a bucket name (an endpoint's ``bucket``) to the limiter that paces
    it; an endpoint whose bucket has none is not paced. ``owns_session`` says whether
    :meth:`aclose` closes the session; a caller's session (a web backend's) never is.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        owns_session: bool,
        base_url: str,
        token_provider: TokenProvider,
        limiters: Mapping[str, RateLimiter],
        retry_policy: RetryPolicy,
        max_retries: int,
        timeout: aiohttp.ClientTimeout,
        stats: ClientStats,
        clock: Clock = loop_time,
    ) -> None:
        self.session = session
        self.owns_session = owns_session
        self.base_url = base_url
        self.stats = stats
        self.timeout = timeout
        self._provider = token_provider
        self._limiters = dict(limiters)
        # The limiters that can serve reads in progress first (the others: key alone).
        self._ordered = {
            bucket: cast(OrderedRateLimiter, limiter)
            for bucket, limiter in limiters.items()
            if _orders_reads(limiter)
        }
        self._policy = retry_policy
        self._max_retries = max_retries
        self._clock = clock
        self._urls: dict[str, URL] = {}
        # The session's connections and timers belong to the loop it was opened in.
        self._loop = asyncio.get_running_loop()
        # Rebuilt only when the token changes: no per-request header churn.
        self._auth_token = ""
        self._auth_headers: dict[str, str] = {}

    async def aclose(self) -> None:
        if self.owns_session:
            await self.session.close()

    async def send(
        self,
        method: str,
        url: URL | str,
        *,
        path: str,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> RawResponse:
        """One HTTP exchange; aiohttp failures become TransportError ``from`` their cause.

        A request that is not ``idempotent`` is sent again only if it surely never
        left (the connection could not be made): after any other failure it may have
        been processed, so its TransportError is not retryable.
        """
        try:
            async with self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                return RawResponse(resp.status, resp.headers, body)
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"timed out (connect {self.timeout.connect}s, total {self.timeout.total}s)"
                + _UNKNOWN_OUTCOME * (not idempotent),
                method=method,
                path=path,
                retryable=idempotent,
            ) from exc
        except aiohttp.ClientError as exc:
            unsent = isinstance(exc, aiohttp.ClientConnectorError)
            raise TransportError(
                f"{type(exc).__name__}: {exc}" + _UNKNOWN_OUTCOME * (not (idempotent or unsent)),
                method=method,
                path=path,
                retryable=idempotent or unsent,
            ) from exc

    def _url(self, endpoint: Endpoint[object]) -> URL:
        url = self._urls.get(endpoint.path)
        if url is None:
            url = self._urls[endpoint.path] = URL(self.base_url + endpoint.path)
        return url

    @staticmethod
    def _key(bucket: str, provider: TokenProvider) -> LimitKey:
        return LimitKey(bucket, provider.identity, provider_tenant(provider))

    def _bearer(self, token: str) -> dict[str, str]:
        if token != self._auth_token:
            self._auth_token = token
            self._auth_headers = {"Authorization": "Bearer " + token, "User-Agent": USER_AGENT}
        return self._auth_headers

    async def call(
        self,
        endpoint: Endpoint[T],
        *,
        params: Mapping[str, str] | None = None,
        json: object = None,
        secrets: tuple[str, ...] = (),
        provider: TokenProvider | None = None,
    ) -> T:
        """Call ``endpoint`` (query ``params``, or a ``json`` body) through the token, the
        endpoint's limiter bucket and the bounded retry loop; return its decoded value.

        ``provider`` replaces the transport's own token provider for this call (a tenant
        view of the client: another tenant's token and bucket, the same session)."""
        if asyncio.get_running_loop() is not self._loop:
            # Checked first, so the answer is the same with a limiter or without one (an
            # aiohttp session used from another loop fails with raw asyncio errors).
            raise RuntimeError(
                "VCClient used outside the event loop it was opened in: its aiohttp "
                "session and limiter belong to that loop; open one client per event loop "
                "(`async with VCClient(...)` inside the loop that uses it)"
            )
        stats = self.stats.endpoint(endpoint.name)
        if provider is None:
            provider = self._provider
        limiter = self._limiters.get(endpoint.bucket) if endpoint.bucket else None
        bucket = endpoint.bucket or endpoint.name
        # Only a limiter reads the key: unpaced calls skip building it.
        key = None if limiter is None else self._key(bucket, provider)
        url = self._url(endpoint)
        body = None if json is None else JSON_ENCODER.encode(json)
        headers = _JSON_HEADERS
        token_refreshed = False
        attempt = 0  # transient retries so far: what the policy and max_retries see
        sent = 0  # every attempt, fresh-token retries included, for the log
        # Bounded: at most max_retries transient retries plus one fresh-token retry.
        while True:
            token: str | None = None
            if endpoint.token:
                try:
                    token = await provider.token(self)
                except FeishuError:
                    stats.errors += 1
                    raise
                headers = self._bearer(token)
                # A provider may learn its tenant with its first token (a stored session).
                if key is not None and provider_tenant(provider) != key.tenant:
                    key = self._key(bucket, provider)
            raw: RawResponse | None = None
            sent_at: float | None = None
            try:
                if limiter is not None:
                    assert key is not None
                    ordered = self._ordered.get(bucket)
                    if ordered is not None and params is not None and "page_token" in params:
                        await ordered.acquire(key, continuing=True)
                    else:
                        await limiter.acquire(key)
                sent_at = stats.record_request()
                sent += 1
                raw = await self.send(
                    endpoint.method,
                    url,
                    path=endpoint.path,
                    params=params,
                    data=body,
                    headers=headers,
                    idempotent=bool(endpoint.idempotent),
                )
                stats.record_answer(sent_at)
                value = read_answer(endpoint, raw, (token, *secrets))
            except FeishuError as exc:
                if sent_at is not None and logger.isEnabledFor(logging.DEBUG):
                    self._log_attempt(endpoint, raw, getattr(exc, "code", None), sent_at, sent)
                if isinstance(exc, RateLimitedError):
                    stats.rate_limited += 1
                    if limiter is not None:
                        assert key is not None
                        await limiter.report_rate_limited(key, exc.reset_seconds)
                if (
                    token is not None
                    and not token_refreshed
                    and isinstance(exc, APIError)
                    and exc.code in provider.refresh_codes
                ):
                    # The token was refused: drop it (only if still cached) and go again.
                    token_refreshed = True
                    provider.invalidate(token)
                    stats.retries += 1
                    logger.warning(
                        "%s %s: token refused (code %d, log_id %s); retrying with a fresh one",
                        endpoint.method,
                        endpoint.path,
                        exc.code,
                        exc.log_id or "-",
                    )
                    continue
                wait = self._retry_wait(endpoint, stats, exc, attempt)
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    self._log_attempt(endpoint, raw, 0, sent_at, sent)
                stats.answers += 1
                return value
            attempt += 1
            if wait > 0:
                await asyncio.sleep(wait)

    def _retry_wait(
        self, endpoint: Endpoint[object], stats: EndpointStats, error: FeishuError, attempt: int
    ) -> float:
        """Seconds to wait before the next attempt, or re-raise ``error`` when there is
        none (the policy says no, or the retries are spent)."""
        decision = self._policy(error, attempt)
        if not decision.retry or attempt >= self._max_retries:
            stats.errors += 1
            raise error
        stats.retries += 1
        logger.warning(
            "%s %s: retry %d/%d in %.2fs: %s",
            endpoint.method,
            endpoint.path,
            attempt + 1,
            self._max_retries,
            decision.wait,
            decision.reason,
        )
        return decision.wait

    def _log_attempt(
        self,
        endpoint: Endpoint[object],
        raw: RawResponse | None,
        code: object,
        sent_at: float,
        attempt: int,
    ) -> None:
        logger.debug(
            "%s %s status=%s code=%s log_id=%s %.1fms attempt=%d",
            endpoint.method,
            endpoint.path,
            raw.status if raw is not None else "-",
            code if code is not None else "-",
            (raw.log_id if raw is not None else None) or "-",
            (self._clock() - sent_at) * 1000.0,
            attempt,
        )


def _orders_reads(limiter: RateLimiter) -> bool:
    """Whether ``limiter.acquire`` takes ``continuing`` (a limiter written before it
    was added to the protocol does not, and is called with the key alone)."""
    try:
        return "continuing" in inspect.signature(limiter.acquire).parameters
    except (TypeError, ValueError):  # a callable whose signature cannot be read
        return False
