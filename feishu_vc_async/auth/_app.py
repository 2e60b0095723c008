"""What a client authenticates with: app credentials, a token provider, or a held token."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._clock import Clock
from .._validate import non_empty
from ._protocol import TokenProvider
from ._shared_tokens import SharedTokens
from ._static import StaticTokenProvider
from ._tenant import TenantTokenProvider

__all__ = ["AppCredentials", "Auth", "token_provider_for"]


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """A custom app's id and secret: the client fetches its tenant tokens, caches them
    and refreshes them before they end. The secret is kept out of the ``repr``.
    ``shared``: a :class:`~._shared_tokens.SharedTokens` to share the tenant token with
    every process using the same Redis (one fetch per expiry among them all)."""

    app_id: str
    app_secret: str = field(repr=False)
    shared: SharedTokens | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        non_empty("app_id", self.app_id)
        non_empty("app_secret", self.app_secret)


# How a client authenticates: app credentials, any token provider (a user session, a
# store app's tenant, ...), or an access token the caller holds (``t-...`` or ``u-...``).
Auth = AppCredentials | TokenProvider | str


def token_provider_for(auth: Auth, *, clock: Clock) -> TokenProvider:
    """The provider behind ``auth`` (``clock``: where a tenant token's age is read)."""
    if isinstance(auth, str):
        return StaticTokenProvider(auth)
    if isinstance(auth, AppCredentials):
        return TenantTokenProvider(auth.app_id, auth.app_secret, clock=clock, shared=auth.shared)
    if isinstance(auth, TokenProvider):
        return auth
    raise TypeError(
        "auth: must be AppCredentials(app_id, app_secret), a TokenProvider or an access "
        f"token (str), got {type(auth).__name__}"
    )
