"""A user's OAuth session: the token pair, when it was obtained, and who it belongs to.

Times are unix seconds (wall clock), not a monotonic clock: a session is stored and
read again by other processes, on other hosts and after restarts. Lifetimes are kept as
the platform gave them (``expires_in`` seconds from ``obtained_at``, the moment the
token request was sent, so a slow answer only makes the client refresh early).
"""

from __future__ import annotations

import msgspec

from .._constants import TOKEN_MAX_LIFETIME, TOKEN_REFRESH_MARGIN
from .._token_answers import UserInfo, UserTokenResponse
from .._validate import non_empty
from ._protocol import check_token
from ._tenant import cache_deadline

__all__ = ["UserSession"]


class UserSession(msgspec.Struct, frozen=True, kw_only=True):
    """One user's tokens for one app. Never shows a token in its ``repr``.

    A web backend that ran the OAuth flow itself builds one from its token answer
    (``access_token``, ``expires_in``, ``refresh_token``, ``refresh_token_expires_in``,
    ``scope``) with ``obtained_at=time.time()`` of the request, and hands it to a
    :class:`~feishu_vc_async.auth.SessionStore`.
    """

    app_id: str
    access_token: str
    expires_in: int
    obtained_at: float
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    scope: str = ""
    open_id: str = ""
    name: str = ""
    tenant_key: str = ""

    def __post_init__(self) -> None:
        non_empty("app_id", self.app_id)
        check_token(self.access_token, "access_token")
        if self.refresh_token is not None:
            check_token(self.refresh_token, "refresh_token")
        if isinstance(self.expires_in, bool) or self.expires_in < 1:
            raise ValueError(f"expires_in={self.expires_in!r}: must be at least 1 second")

    @classmethod
    def from_answer(
        cls,
        answer: UserTokenResponse,
        *,
        app_id: str,
        obtained_at: float,
        previous: UserSession | None = None,
    ) -> UserSession:
        """The session a token answer (an exchange or a refresh) gives; the user's names
        are kept from ``previous`` (a refresh answer does not say who). An answer
        without ``expires_in`` is taken to last the platform's longest (a refused token
        is refreshed anyway)."""
        if not answer.access_token:
            raise ValueError("the token answer lacks access_token")
        return cls(
            app_id=app_id,
            access_token=answer.access_token,
            expires_in=answer.expires_in or TOKEN_MAX_LIFETIME,
            obtained_at=obtained_at,
            refresh_token=answer.refresh_token,
            refresh_expires_in=answer.refresh_token_expires_in,
            scope=answer.scope if answer.scope is not None else previous.scope if previous else "",
            open_id=previous.open_id if previous else "",
            name=previous.name if previous else "",
            tenant_key=previous.tenant_key if previous else "",
        )

    def with_user(self, info: UserInfo) -> UserSession:
        """This session, naming the user ``info`` describes."""
        return msgspec.structs.replace(
            self, open_id=info.open_id, name=info.name or info.en_name, tenant_key=info.tenant_key
        )

    @property
    def expires_at(self) -> float:
        """When the access token ends (unix seconds)."""
        return self.obtained_at + self.expires_in

    @property
    def refresh_expires_at(self) -> float | None:
        """When the refresh token ends (unix seconds); ``None``: unknown or no token."""
        if self.refresh_token is None or self.refresh_expires_in is None:
            return None
        return self.obtained_at + self.refresh_expires_in

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split())

    def refresh_at(self, margin: float = TOKEN_REFRESH_MARGIN) -> float:
        """When to refresh: ``margin`` before the access token ends, at most half its
        life early (the rule of every cached token here)."""
        return cache_deadline(self.obtained_at, self.expires_in, margin)

    @property
    def who(self) -> str:
        """The user as messages name them: name and open_id, or ``"unknown user"``."""
        if self.name and self.open_id:
            return f"{self.name} ({self.open_id})"
        return self.name or self.open_id or "unknown user"

    def __repr__(self) -> str:
        return (
            f"UserSession(app_id={self.app_id!r}, user={self.who!r}, "
            f"tenant_key={self.tenant_key!r}, expires_at={self.expires_at:.0f}, "
            f"refresh_expires_at={self.refresh_expires_at}, scope={self.scope!r})"
        )

    __str__ = __repr__
