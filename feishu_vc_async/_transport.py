"""One pooled aiohttp session: send, read, decode, map errors, and the bounded retry loop.

Every attempt takes a fresh token from the provider (cached, so this is a dict lookup
on the hot path), then a slot from the rate limiter right before the send; sleeping
for a retry happens outside both, so a waiting retry blocks nobody.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final, NamedTuple

import aiohttp
import msgspec
from multidict import CIMultiDictProxy
from yarl import URL

from ._constants import (
    BODY_SNIPPET_CHARS,
    LOGGER_NAME,
    LOGID_HEADER,
    PARTICIPANT_LIST_PATH,
    RATELIMIT_LIMIT_HEADER,
    RATELIMIT_RESET_HEADER,
)
from ._retry import RetryPolicy, parse_reset_header
from ._stats import ClientStats
from .errors import (
    RATE_LIMITED_CODE,
    APIError,
    DecodeError,
    FeishuError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
    error_for_code,
)
from .models import (
    ERROR_ENVELOPE_DECODER,
    PARTICIPANT_LIST_DECODER,
    ParticipantPage,
)

if TYPE_CHECKING:
    from .auth import TokenProvider
    from .ratelimit import LimitKey, RateLimiter

__all__ = ["RawResponse", "Transport"]

logger = logging.getLogger(LOGGER_NAME)

USER_AGENT: Final = "feishu-vc-async/0.1 (+aiohttp)"
_EMPTY_PAGE: Final = ParticipantPage()


class RawResponse(NamedTuple):
    """One HTTP answer, read fully inside the response context."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def log_id(self) -> str | None:
        return self.headers.get(LOGID_HEADER)


def _snippet(body: bytes, secrets: tuple[str, ...]) -> str:
    text = " ".join(body[: BODY_SNIPPET_CHARS * 2].decode("utf-8", "replace").split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:BODY_SNIPPET_CHARS]


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def decode_error(
    raw: RawResponse,
    method: str,
    path: str,
    message: str,
    secrets: tuple[str, ...] = (),
) -> DecodeError:
    return DecodeError(
        message,
        http_status=raw.status,
        snippet=_snippet(raw.body, secrets),
        log_id=raw.log_id,
        method=method,
        path=path,
    )


def api_error(
    raw: RawResponse,
    method: str,
    path: str,
    *,
    code: int,
    msg: str,
    body_log_id: str | None = None,
    secrets: tuple[str, ...] = (),
) -> APIError:
    """The typed error of a non-zero ``code`` answer, with status, log id and reset hint."""
    reset: float | None = None
    limit: int | None = None
    throttled = code == RATE_LIMITED_CODE or raw.status == 429
    if throttled:
        reset = parse_reset_header(raw.headers.get(RATELIMIT_RESET_HEADER))
        limit_text = raw.headers.get(RATELIMIT_LIMIT_HEADER)
        if limit_text and limit_text.isdigit():
            limit = int(limit_text)
    err = error_for_code(
        http_status=raw.status,
        code=code,
        msg=_scrub(msg, secrets),
        log_id=raw.log_id or body_log_id,
        method=method,
        path=path,
        reset_seconds=reset,
        limit=limit,
    )
    if throttled and type(err) is APIError:
        # An HTTP 429 is the gateway throttling whatever code its body carries.
        return RateLimitedError(
            http_status=err.http_status,
            code=err.code,
            msg=err.msg,
            log_id=err.log_id,
            method=method,
            path=path,
            reset_seconds=reset,
            limit=limit,
        )
    return err


def error_from_failed_body(
    raw: RawResponse,
    method: str,
    path: str,
    cause: msgspec.DecodeError,
    secrets: tuple[str, ...] = (),
) -> FeishuError:
    """The body did not decode as the endpoint's answer: an error envelope, or junk."""
    try:
        envelope = ERROR_ENVELOPE_DECODER.decode(raw.body)
    except msgspec.DecodeError:
        kind = (
            "body is not JSON" if raw.body.lstrip()[:1] not in (b"{", b"[") else "unexpected JSON"
        )
        return decode_error(raw, method, path, kind, secrets)
    if envelope.code == 0:
        return decode_error(
            raw, method, path, f"code 0 but the body does not match the schema ({cause})", secrets
        )
    return api_error(
        raw,
        method,
        path,
        code=envelope.code,
        msg=envelope.msg,
        body_log_id=envelope.error.log_id if envelope.error else None,
        secrets=secrets,
    )


class Transport:
    """The session wrapper of one open client.

    ``owns_session`` says whether :meth:`aclose` closes the session; a caller-owned
    session (a web backend's) is never closed here.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        owns_session: bool,
        base_url: str,
        token_provider: TokenProvider,
        limiter: RateLimiter | None,
        limit_key: LimitKey,
        retry_policy: RetryPolicy,
        max_retries: int,
        timeout: aiohttp.ClientTimeout,
        stats: ClientStats,
    ) -> None:
        self.session = session
        self.owns_session = owns_session
        self.base_url = base_url
        self.stats = stats
        self.timeout = timeout
        self._provider = token_provider
        self._limiter = limiter
        self._key = limit_key
        self._policy = retry_policy
        self._max_retries = max_retries
        self._list_url = URL(base_url + PARTICIPANT_LIST_PATH)
        # Rebuilt only when the token changes: no per-request header churn.
        self._auth_token = ""
        self._headers: dict[str, str] = {}

    async def aclose(self) -> None:
        if self.owns_session:
            await self.session.close()

    async def send(
        self,
        method: str,
        url: URL | str,
        *,
        path: str,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse:
        """One HTTP exchange; aiohttp failures become TransportError ``from`` their cause."""
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
                f"timed out (connect {self.timeout.connect}s, total {self.timeout.total}s)",
                method=method,
                path=path,
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}", method=method, path=path) from exc

    def _decode_page(self, raw: RawResponse, token: str) -> ParticipantPage:
        try:
            envelope = PARTICIPANT_LIST_DECODER.decode(raw.body)
        except msgspec.DecodeError as exc:
            raise error_from_failed_body(raw, "GET", PARTICIPANT_LIST_PATH, exc, (token,)) from None
        if envelope.code == 0 and raw.status < 400:
            return envelope.data if envelope.data is not None else _EMPTY_PAGE
        raise api_error(
            raw,
            "GET",
            PARTICIPANT_LIST_PATH,
            code=envelope.code,
            msg=envelope.msg,
            body_log_id=envelope.error.log_id if envelope.error else None,
            secrets=(token,),
        )

    def _log_attempt(
        self, raw: RawResponse | None, code: object, started: float, attempt: int
    ) -> None:
        logger.debug(
            "GET %s status=%s code=%s log_id=%s %.1fms attempt=%d",
            PARTICIPANT_LIST_PATH,
            raw.status if raw is not None else "-",
            code if code is not None else "-",
            (raw.log_id if raw is not None else None) or "-",
            (time.perf_counter() - started) * 1000.0,
            attempt,
        )

    async def participant_list(self, params: dict[str, str]) -> ParticipantPage:
        """One page, through the token, the limiter and the bounded retry loop."""
        stats = self.stats
        provider = self._provider
        limiter = self._limiter
        token_refreshed = False
        attempt = 0  # transient retries so far: what the policy and max_retries see
        sent = 0  # every attempt, fresh-token retries included, for the log
        # Bounded: at most max_retries transient retries plus one fresh-token retry.
        while True:
            token: str | None = None
            raw: RawResponse | None = None
            started = 0.0
            try:
                token = await provider.token(self)
                if token != self._auth_token:
                    self._auth_token = token
                    self._headers = {"Authorization": "Bearer " + token, "User-Agent": USER_AGENT}
                headers = self._headers
                if limiter is not None:
                    await limiter.acquire(self._key)
                stats.record_request()
                sent += 1
                started = time.perf_counter()
                raw = await self.send(
                    "GET",
                    self._list_url,
                    path=PARTICIPANT_LIST_PATH,
                    params=params,
                    headers=headers,
                )
                stats.record_latency(time.perf_counter() - started)
                page = self._decode_page(raw, token)
            except FeishuError as exc:
                if started and logger.isEnabledFor(logging.DEBUG):
                    self._log_attempt(raw, getattr(exc, "code", None), started, sent)
                if isinstance(exc, RateLimitedError):
                    stats.rate_limited += 1
                    if limiter is not None and token is not None:
                        await limiter.report_rate_limited(self._key, exc.reset_seconds)
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
                        "GET %s: token refused (code %d, log_id %s); retrying with a fresh one",
                        PARTICIPANT_LIST_PATH,
                        exc.code,
                        exc.log_id or "-",
                    )
                    continue
                decision = self._policy(exc, attempt)
                if not decision.retry or attempt >= self._max_retries:
                    stats.errors += 1
                    raise
                stats.retries += 1
                logger.warning(
                    "GET %s: retry %d/%d in %.2fs: %s",
                    PARTICIPANT_LIST_PATH,
                    attempt + 1,
                    self._max_retries,
                    decision.wait,
                    decision.reason,
                )
                wait = decision.wait
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    self._log_attempt(raw, 0, started, sent)
                stats.pages += 1
                return page
            attempt += 1
            if wait > 0:
                await asyncio.sleep(wait)
