"""One pooled aiohttp session and the one bounded request loop every endpoint goes through.

The loop has three layers, as httpx's ``send`` → ``_send_handling_auth`` →
``_send_single_request``:

* :meth:`Transport.call`: the bounded retry loop. Whether to try again is the retry
  policy's call (pure), bounded by ``max_retries``; sleeping for a retry happens
  outside the limiter and the token, so a waiting retry blocks nobody.
* :meth:`Transport._token_refused`: a token the platform refuses (one of the provider's
  ``refresh_codes``) is invalidated and the attempt repeated once with a fresh one.
* :meth:`Transport._attempt`: one attempt: a slot from the endpoint's rate-limit bucket
  right before the send, the exchange (:meth:`Transport.send`, the body read within
  ``max_answer_bytes``), and the answer turned into a value or a typed error by
  ``_answers`` (pure).

A provider that fetches tokens does so through :meth:`Transport.call` as well (see
``auth``), so its request is retried, paced and logged like any other; if it still
fails, that failure is the caller's answer and is not retried again by the request that
needed the token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import aiohttp
from yarl import URL

from ._answers import RawResponse, read_answer
from ._clock import Clock, loop_time
from ._constants import CONNECT_TIMEOUT, LOGGER_NAME, MAX_ANSWER_BYTES, TOTAL_TIMEOUT
from ._endpoints import Endpoint
from ._retry import Retries
from ._stats import ClientStats, EndpointStats
from ._validate import positive_int, positive_seconds
from .auth import TokenProvider
from .errors import (
    AnswerTooLargeError,
    APIError,
    FeishuError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
)
from .models import JSON_ENCODER
from .ratelimit import LimitKey, RateLimiter

__all__ = ["USER_AGENT", "Timeouts", "Transport"]

logger = logging.getLogger(LOGGER_NAME)

USER_AGENT: Final = "feishu-vc-async/0.1 (+aiohttp)"
_JSON_HEADERS: Final = {
    "Content-Type": "application/json; charset=utf-8",
    "User-Agent": USER_AGENT,
}
_UNKNOWN_OUTCOME: Final = " (the request may have been processed; not sent again)"
# Bodies without a Content-Length are read in pieces of this size, counted as they come.
_READ_CHUNK: Final = 256 * 1024

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to connect, and for a whole exchange (connect, send, the answer read)."""

    connect: float = CONNECT_TIMEOUT
    total: float = TOTAL_TIMEOUT

    def __post_init__(self) -> None:
        positive_seconds("timeouts.connect", self.connect)
        positive_seconds("timeouts.total", self.total)


@dataclass(slots=True)
class _Call(Generic[T]):
    """One call of :meth:`Transport.call`: what every attempt of it sends and counts."""

    endpoint: Endpoint[T]
    params: Mapping[str, str] | None
    body: bytes | None
    secrets: tuple[str, ...]
    provider: TokenProvider
    stats: EndpointStats
    limiter: RateLimiter | None
    key: LimitKey | None
    token_refreshed: bool = False
    sent: int = 0  # attempts sent, fresh-token retries included, for the log


class Transport:
    """The session wrapper of one open client.

    ``limiters`` maps a bucket name (an endpoint's ``bucket``) to the limiter that paces
    it; an endpoint whose bucket has none is not paced. ``owns_session`` says whether
    :meth:`aclose` closes the session; a caller's session (a web backend's) never is.
    ``max_answer_bytes`` bounds the body of any answer (a proxy that never ends one must
    not exhaust memory).
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        owns_session: bool,
        base_url: str,
        token_provider: TokenProvider,
        limiters: Mapping[str, RateLimiter],
        retries: Retries,
        timeouts: Timeouts,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        stats: ClientStats,
        clock: Clock = loop_time,
    ) -> None:
        self.session = session
        self.owns_session = owns_session
        self.base_url = base_url
        self.stats = stats
        self.timeout = aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)
        self.max_answer_bytes = positive_int("max_answer_bytes", max_answer_bytes)
        self._provider = token_provider
        self._limiters = dict(limiters)
        self._retries = retries
        self._clock = clock
        self._urls: dict[str, URL] = {}
        # The session's connections and timers belong to the loop it was opened in.
        self._loop = asyncio.get_running_loop()
        # Rebuilt only when the token changes: no per-request header churn.
        self._auth_token = ""
        self._auth_headers: dict[str, str] = {}
        # Bucket → the loop time before which no request of it goes (see hold).
        self._held: dict[str, float] = {}

    def hold(self, bucket: str, until: float) -> None:
        """No request counted against ``bucket`` is sent before loop time ``until``."""
        self._held[bucket] = max(until, self._held.get(bucket, until))

    async def aclose(self) -> None:
        if self.owns_session:
            await self.session.close()

    # --- the loop ------------------------------------------------------------------------

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
        self._check_loop()
        call = self._prepare(endpoint, params, json, secrets, provider or self._provider)
        attempt = 0  # transient retries so far: what the policy and max_retries see
        # Bounded: at most max_retries transient retries plus one fresh-token retry.
        while True:
            token = await self._token(call)
            try:
                return await self._attempt(call, token)
            except FeishuError as exc:
                if self._token_refused(call, token, exc):
                    continue
                wait = self._retry_wait(call, exc, attempt)
            attempt += 1
            if wait > 0:
                await asyncio.sleep(wait)

    def _check_loop(self) -> None:
        if asyncio.get_running_loop() is not self._loop:
            # Checked first, so the answer is the same with a limiter or without one (an
            # aiohttp session used from another loop fails with raw asyncio errors).
            raise RuntimeError(
                "VCClient used outside the event loop it was opened in: its aiohttp "
                "session and limiter belong to that loop; open one client per event loop "
                "(`async with VCClient(...)` inside the loop that uses it)"
            )

    def _prepare(
        self,
        endpoint: Endpoint[T],
        params: Mapping[str, str] | None,
        json: object,
        secrets: tuple[str, ...],
        provider: TokenProvider,
    ) -> _Call[T]:
        limiter = self._limiters.get(endpoint.bucket) if endpoint.bucket else None
        return _Call(
            endpoint=endpoint,
            params=params,
            body=None if json is None else JSON_ENCODER.encode(json),
            secrets=secrets,
            provider=provider,
            stats=self.stats.endpoint(endpoint.name),
            limiter=limiter,
            # Only a limiter reads the key: unpaced calls skip building it.
            key=None if limiter is None else _key(endpoint, provider),
        )

    async def _token(self, call: _Call[T]) -> str | None:
        """The provider's token when the endpoint needs one. A failure is final here: the
        provider's own requests went through their own bounded loop."""
        if not call.endpoint.token:
            return None
        try:
            token = await call.provider.token(self)
        except FeishuError:
            call.stats.errors += 1
            raise
        # A provider may learn its tenant with its first token (a stored session).
        if call.key is not None and call.provider.tenant != call.key.tenant:
            call.key = _key(call.endpoint, call.provider)
        return token

    def _token_refused(self, call: _Call[T], token: str | None, error: FeishuError) -> bool:
        """Whether ``error`` refuses ``token`` and this call may try once more with a
        fresh one: then the token is dropped (only if still cached)."""
        if (
            token is None
            or call.token_refreshed
            or not isinstance(error, APIError)
            or error.code not in call.provider.refresh_codes
        ):
            return False
        call.token_refreshed = True
        call.provider.invalidate(token)
        call.stats.retries += 1
        logger.warning(
            "%s %s: token refused (code %d, log_id %s); retrying with a fresh one",
            call.endpoint.method,
            call.endpoint.path,
            error.code,
            error.log_id or "-",
        )
        return True

    def _retry_wait(self, call: _Call[T], error: FeishuError, attempt: int) -> float:
        """Seconds to wait before the next attempt, or re-raise ``error`` when there is
        none (the policy says no, or the retries are spent)."""
        decision = self._retries.policy(error, attempt)
        if not decision.retry or attempt >= self._retries.max_retries:
            call.stats.errors += 1
            raise error
        call.stats.retries += 1
        logger.warning(
            "%s %s: retry %d/%d in %.2fs: %s",
            call.endpoint.method,
            call.endpoint.path,
            attempt + 1,
            self._retries.max_retries,
            decision.wait,
            decision.reason,
        )
        return decision.wait

    # --- one attempt ---------------------------------------------------------------------

    async def _attempt(self, call: _Call[T], token: str | None) -> T:
        """One slot of the limiter, one exchange, the answer read: a value or a typed error."""
        endpoint, stats = call.endpoint, call.stats
        if self._held:
            wait = self._held.get(endpoint.bucket or "", 0.0) - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        if call.limiter is not None:
            assert call.key is not None
            continuing = call.params is not None and "page_token" in call.params
            await call.limiter.acquire(call.key, continuing=continuing)
        sent_at = stats.record_request()
        call.sent += 1
        raw: RawResponse | None = None
        try:
            raw = await self.send(
                endpoint.method,
                self._url(endpoint),
                path=endpoint.path,
                params=call.params,
                data=call.body,
                headers=_JSON_HEADERS if token is None else self._bearer(token),
                idempotent=bool(endpoint.idempotent),
            )
            stats.record_answer(sent_at)
            value = read_answer(endpoint, raw, (token, *call.secrets))
        except FeishuError as exc:
            self._log_attempt(call, raw, exc.code, sent_at)
            if isinstance(exc, RateLimitedError):
                stats.rate_limited += 1
                if call.limiter is not None:
                    assert call.key is not None
                    await call.limiter.report_rate_limited(call.key, exc.reset_seconds)
            raise
        self._log_attempt(call, raw, 0, sent_at)
        stats.answers += 1
        return value

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
                body = await self._read_body(resp, method, path, idempotent)
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

    async def _read_body(
        self, resp: aiohttp.ClientResponse, method: str, path: str, idempotent: bool
    ) -> bytes:
        """The whole body, refused past ``max_answer_bytes``: by its Content-Length
        before reading, else counted as it comes (a chunked answer that never ends)."""
        cap = self.max_answer_bytes
        length = resp.content_length
        if length is not None and length <= cap:
            return await resp.read()
        if length is None:
            body = bytearray()
            async for chunk in resp.content.iter_chunked(_READ_CHUNK):
                body += chunk
                if len(body) > cap:
                    break
            else:
                return bytes(body)
        raise AnswerTooLargeError(
            limit=cap,
            announced=length,
            http_status=resp.status,
            log_id=RawResponse(resp.status, resp.headers, b"").log_id,
            method=method,
            path=path,
            retryable=idempotent,
        )

    def _url(self, endpoint: Endpoint[object]) -> URL:
        url = self._urls.get(endpoint.path)
        if url is None:
            url = self._urls[endpoint.path] = URL(self.base_url + endpoint.path)
        return url

    def _bearer(self, token: str) -> dict[str, str]:
        if token != self._auth_token:
            self._auth_token = token
            self._auth_headers = {"Authorization": "Bearer " + token, "User-Agent": USER_AGENT}
        return self._auth_headers

    def _log_attempt(
        self, call: _Call[T], raw: RawResponse | None, code: object, sent_at: float
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        logger.debug(
            "%s %s status=%s code=%s log_id=%s %.1fms attempt=%d",
            call.endpoint.method,
            call.endpoint.path,
            raw.status if raw is not None else "-",
            code if code is not None else "-",
            (raw.log_id if raw is not None else None) or "-",
            (self._clock() - sent_at) * 1000.0,
            call.sent,
        )


def _key(endpoint: Endpoint[object], provider: TokenProvider) -> LimitKey:
    return LimitKey(endpoint.bucket or endpoint.name, provider.identity, provider.tenant)
