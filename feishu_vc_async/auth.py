"""Where access tokens come from: a caller's token, app credentials, or a user-token refresh.

The transport asks its :class:`TokenProvider` for a token before every attempt (a cached
value on the hot path). When the platform refuses a token with one of the provider's
``refresh_codes``, the transport calls :meth:`TokenProvider.invalidate` with the refused
token and tries once more; the next :meth:`TokenProvider.token` then fetches a fresh one.

Concurrency: a cold or invalidated cache is refilled by exactly one request however many
callers wait (an ``asyncio.Lock`` per event loop, re-checked under the lock), and
``invalidate`` only drops the token it is given, so fifty requests that fail with the
same stale token cause one refresh, not fifty.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, runtime_checkable

import aiohttp
import msgspec
from yarl import URL

from ._constants import (
    LOGGER_NAME,
    TENANT_TOKEN_PATH,
    TOKEN_MAX_LIFETIME,
    TOKEN_REFRESH_MARGIN,
)
from ._stats import ClientStats
from ._transport import RawResponse, api_error, decode_error, error_from_failed_body
from .errors import (
    TENANT_TOKEN_RETRY_CODES,
    USER_TOKEN_REFRESH_CODES,
    AuthError,
    InternalServerError,
    RateLimitedError,
)
from .models import ERROR_ENVELOPE_DECODER, JSON_ENCODER, TENANT_TOKEN_DECODER
from .ratelimit import token_identity

__all__ = [
    "SessionContext",
    "StaticTokenProvider",
    "TenantTokenProvider",
    "TokenProvider",
    "UserTokenProvider",
    "check_token",
]

logger = logging.getLogger(LOGGER_NAME)

_JSON_HEADERS: Final = {"Content-Type": "application/json; charset=utf-8"}


class SessionContext(Protocol):
    """What a provider may use of the open client (its transport): the pooled session,
    the base URL, the live stats, and ``send`` for one HTTP exchange with the client's
    timeouts and error mapping."""

    @property
    def session(self) -> aiohttp.ClientSession: ...

    @property
    def base_url(self) -> str: ...

    @property
    def stats(self) -> ClientStats: ...

    async def send(
        self,
        method: str,
        url: URL | str,
        *,
        path: str,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse: ...


@runtime_checkable
class TokenProvider(Protocol):
    """What the transport needs of a token source.

    ``identity`` names the rate-limit budget (an app id, or :func:`token_identity` of a
    caller's token), never a secret. ``refresh_codes`` are the platform codes after which
    a fresh token may succeed (empty: nothing to refresh with). ``token`` is awaited
    before every attempt, so it must be cheap when cached; it receives the open client's
    :class:`SessionContext`. ``invalidate(token)`` is called with a refused token and must
    drop it only if it is still the cached one (concurrent failures share one refresh).
    """

    @property
    def identity(self) -> str: ...

    @property
    def refresh_codes(self) -> frozenset[int]: ...

    async def token(self, session_ctx: SessionContext) -> str: ...

    def invalidate(self, token: str) -> None: ...


def check_token(token: object, argument: str = "access_token") -> str:
    """A usable bearer token, or ValueError naming ``argument`` (never echoing the token)."""
    if not isinstance(token, str) or not token:
        raise ValueError(f"{argument}: must be a non-empty string")
    if token != token.strip() or any(c in token for c in " \r\n\t"):
        raise ValueError(f"{argument}: must not contain whitespace (pass the bare token)")
    return token


class _LoopLock:
    """An asyncio.Lock per event loop, so a provider outlives a loop (tests, reruns)."""

    __slots__ = ("_lock", "_loop")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._lock = asyncio.Lock()
        return self._lock


class StaticTokenProvider:
    """A token the caller holds (tenant ``t-`` or user ``u-``); nothing to refresh with."""

    __slots__ = ("_token", "identity")

    refresh_codes: frozenset[int] = frozenset()

    def __init__(self, access_token: str) -> None:
        self._token = check_token(access_token)
        self.identity = token_identity(access_token)

    async def token(self, session_ctx: SessionContext) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to do: a caller's token cannot be replaced here."""

    def __repr__(self) -> str:
        return f"StaticTokenProvider(identity={self.identity!r})"


class UserTokenProvider:
    """A user token plus the caller's async ``refresh()`` that returns a new one.

    ``refresh`` is called once (single-flight) after 99991663 / 99991668 / 99991677, then the
    request is tried again with the new token.
    """

    __slots__ = ("_lock", "_refresh", "_stale", "_token", "identity")

    refresh_codes: frozenset[int] = USER_TOKEN_REFRESH_CODES

    def __init__(self, access_token: str, refresh: Callable[[], Awaitable[str]]) -> None:
        if not callable(refresh):
            raise ValueError("refresh_user_token: must be an async callable returning a token")
        self._token = check_token(access_token)
        self._refresh = refresh
        self._stale = False
        self._lock = _LoopLock()
        # The budget belongs to the user, so it keeps the first token's name across refreshes.
        self.identity = token_identity(access_token)

    async def token(self, session_ctx: SessionContext) -> str:
        if not self._stale:
            return self._token
        async with self._lock.get():
            if self._stale:
                session_ctx.stats.token_fetches += 1
                try:
                    fresh = await self._refresh()
                except Exception as exc:
                    # The callback's own message may quote a token: name only its type.
                    raise AuthError(
                        http_status=0,
                        code=0,
                        msg=f"refresh_user_token failed with {type(exc).__name__}",
                    ) from exc
                self._token = check_token(fresh, "refresh_user_token() result")
                self._stale = False
                logger.info("user access token refreshed (%s)", self.identity)
            return self._token

    def invalidate(self, token: str) -> None:
        if token == self._token:
            self._stale = True

    def __repr__(self) -> str:
        return f"UserTokenProvider(identity={self.identity!r})"


class TenantTokenProvider:
    """Tenant tokens from app credentials, fetched over the client's own session.

    Cached until ``expire`` minus a margin: ``TOKEN_REFRESH_MARGIN``, but at most half
    the lifetime, so short (scaled) lifetimes in tests still get a cached token.
    """

    __slots__ = ("_lock", "_refresh_at", "_secret", "_token", "app_id")

    refresh_codes: frozenset[int] = TENANT_TOKEN_RETRY_CODES

    def __init__(self, app_id: str, app_secret: str) -> None:
        if not isinstance(app_id, str) or not app_id:
            raise ValueError("app_id: must be a non-empty string")
        if not isinstance(app_secret, str) or not app_secret:
            raise ValueError("app_secret: must be a non-empty string")
        self.app_id = app_id
        self._secret = app_secret
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = _LoopLock()

    @property
    def identity(self) -> str:
        return self.app_id

    async def token(self, session_ctx: SessionContext) -> str:
        token = self._token
        if token is not None and time.monotonic() < self._refresh_at:
            return token
        async with self._lock.get():
            # Whoever waited on the lock finds the token the first caller fetched.
            token = self._token
            if token is not None and time.monotonic() < self._refresh_at:
                return token
            return await self._fetch(session_ctx)

    def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = None
            self._refresh_at = 0.0

    async def _fetch(self, ctx: SessionContext) -> str:
        ctx.stats.token_fetches += 1
        path = TENANT_TOKEN_PATH
        payload = JSON_ENCODER.encode({"app_id": self.app_id, "app_secret": self._secret})
        started = time.monotonic()
        raw = await ctx.send(
            "POST", ctx.base_url + path, path=path, data=payload, headers=_JSON_HEADERS
        )
        secrets = (self._secret,)
        try:
            answer = TENANT_TOKEN_DECODER.decode(raw.body)
        except msgspec.DecodeError as exc:
            raise error_from_failed_body(raw, "POST", path, exc, secrets) from None
        logger.debug(
            "POST %s status=%d code=%d log_id=%s %.1fms",
            path,
            raw.status,
            answer.code,
            raw.log_id or "-",
            (time.monotonic() - started) * 1000.0,
        )
        if answer.code != 0 or raw.status >= 400:
            # The token answer's struct has no ``error``: read the log id from the envelope.
            envelope = ERROR_ENVELOPE_DECODER.decode(raw.body)
            err = api_error(
                raw,
                "POST",
                path,
                code=answer.code,
                msg=answer.msg,
                body_log_id=envelope.error.log_id if envelope.error else None,
                secrets=secrets,
            )
            if isinstance(err, InternalServerError | RateLimitedError | AuthError):
                raise err  # transient ones stay retryable
            raise AuthError(
                http_status=err.http_status,
                code=err.code,
                msg=err.msg,
                log_id=err.log_id,
                method="POST",
                path=path,
            )
        token = answer.tenant_access_token
        if not token:
            raise decode_error(raw, "POST", path, "code 0 but no tenant_access_token", secrets)
        lifetime = float(answer.expire) if answer.expire and answer.expire > 0 else None
        if lifetime is None:
            lifetime = float(TOKEN_MAX_LIFETIME)
        margin = min(TOKEN_REFRESH_MARGIN, lifetime / 2)
        self._token = token
        self._refresh_at = started + lifetime - margin
        return token

    def __repr__(self) -> str:
        return f"TenantTokenProvider(app_id={self.app_id!r})"
