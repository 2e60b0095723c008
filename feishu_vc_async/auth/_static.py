"""A token the caller holds, and a user token renewed by the caller's own callback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from .._constants import LOGGER_NAME
from .._error_codes import USER_TOKEN_REFRESH_CODES
from .._singleflight import SingleFlight
from ..errors import AuthError
from ..ratelimit import token_identity
from ._protocol import Sender, check_token

__all__ = ["StaticTokenProvider", "UserTokenProvider"]

logger = logging.getLogger(LOGGER_NAME)


class StaticTokenProvider:
    """A token the caller holds (tenant ``t-`` or user ``u-``); nothing to refresh with."""

    __slots__ = ("_token", "identity")

    refresh_codes: frozenset[int] = frozenset()
    tenant = ""  # the token's tenant is not known here: the identity's one budget

    def __init__(self, access_token: str) -> None:
        self._token = check_token(access_token)
        self.identity = token_identity(access_token)

    async def token(self, sender: Sender) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to do: a caller's token cannot be replaced here."""

    def __repr__(self) -> str:
        return f"StaticTokenProvider(identity={self.identity!r})"


class UserTokenProvider:
    """A user token plus the caller's async ``refresh()`` that returns a new one.

    ``refresh`` is called once (single-flight) after 99991663 / 99991668 / 99991677, then
    the request is tried again with the new token.
    """

    __slots__ = ("_flight", "_refresh", "_stale", "_token", "identity")

    refresh_codes: frozenset[int] = USER_TOKEN_REFRESH_CODES
    tenant = ""

    def __init__(self, access_token: str, refresh: Callable[[], Awaitable[str]]) -> None:
        if not callable(refresh):
            raise ValueError("refresh_user_token: must be an async callable returning a token")
        self._token = check_token(access_token)
        self._refresh = refresh
        self._stale = False
        self._flight: SingleFlight[str] = SingleFlight()
        # The budget belongs to the user, so it keeps the first token's name across refreshes.
        self.identity = token_identity(access_token)

    async def token(self, sender: Sender) -> str:
        if not self._stale:
            return self._token
        return await self._flight.run(lambda: self._renew(sender))

    async def _renew(self, sender: Sender) -> str:
        sender.stats.token_fetches += 1
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
