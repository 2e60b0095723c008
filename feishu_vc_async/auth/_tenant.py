"""Tenant tokens of a custom app, from its credentials, through the client's own loop."""

from __future__ import annotations

from .._clock import Clock, loop_time
from .._constants import TOKEN_MAX_LIFETIME, TOKEN_REFRESH_MARGIN
from .._endpoints import TENANT_TOKEN
from .._error_codes import TENANT_TOKEN_RETRY_CODES
from .._singleflight import SingleFlight
from .._validate import non_empty
from ._protocol import Sender
from ._shared_tokens import Fetched, SharedTokens

__all__ = ["TenantTokenProvider", "cache_deadline"]


def cache_deadline(
    fetched_at: float, expire: int | None, margin: float = TOKEN_REFRESH_MARGIN
) -> float:
    """When a token fetched at ``fetched_at`` with ``expire`` seconds left is refreshed:
    ``margin`` before its end, but at most half its life early, so short (scaled)
    lifetimes in tests still get a cached token."""
    lifetime = float(expire) if expire and expire > 0 else float(TOKEN_MAX_LIFETIME)
    return fetched_at + lifetime - min(margin, lifetime / 2)


class TenantTokenProvider:
    """Tenant tokens from app credentials (``tenant_access_token/internal``), cached
    until :func:`cache_deadline`; a cold or stale cache is refilled by one request
    however many callers wait (:class:`~.._singleflight.SingleFlight`).

    ``shared``: a :class:`~._shared_tokens.SharedTokens`, through which every process
    using the same Redis shares the token: one fetch per expiry among them all."""

    __slots__ = ("_clock", "_flight", "_refresh_at", "_secret", "_shared", "_token", "app_id")

    refresh_codes: frozenset[int] = TENANT_TOKEN_RETRY_CODES
    tenant = ""  # a custom app has one tenant

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        *,
        clock: Clock = loop_time,
        shared: SharedTokens | None = None,
    ) -> None:
        self.app_id = non_empty("app_id", app_id)
        self._secret = non_empty("app_secret", app_secret)
        self._clock = clock
        self._shared = shared
        self._token: str | None = None
        self._refresh_at = 0.0
        self._flight: SingleFlight[str] = SingleFlight()

    @property
    def identity(self) -> str:
        return self.app_id

    async def token(self, sender: Sender) -> str:
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token
        return await self._flight.run(lambda: self._refill(sender))

    def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = None
            self._refresh_at = 0.0
        if self._shared is not None:
            self._shared.refused(self._shared.tenant_key(self.app_id), token)

    async def _refill(self, sender: Sender) -> str:
        shared = self._shared
        if shared is None:
            fetched = await self._fetch(sender)
        else:
            key = shared.tenant_key(self.app_id)
            fetched = await shared.token(key, lambda: self._fetch(sender), self._clock)
        self._token, self._refresh_at = fetched
        return fetched.token

    async def _fetch(self, sender: Sender) -> Fetched:
        sender.stats.token_fetches += 1
        started = self._clock()
        answer = await sender.call(
            TENANT_TOKEN,
            json={"app_id": self.app_id, "app_secret": self._secret},
            secrets=(self._secret,),
        )
        token = answer.tenant_access_token
        assert token is not None  # the endpoint's answer has no value without it
        return Fetched(token, cache_deadline(started, answer.expire))

    def __repr__(self) -> str:
        return f"TenantTokenProvider(app_id={self.app_id!r})"
