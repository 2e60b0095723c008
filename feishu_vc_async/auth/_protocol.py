"""What a token provider is, and the small thing it sends its own requests through.

The request loop (``_transport``) asks its :class:`TokenProvider` for a token before
every attempt of an endpoint that needs one (a cached value on the hot path). When the
platform refuses a token with one of the provider's ``refresh_codes``, the loop calls
:meth:`TokenProvider.invalidate` with the refused token and tries once more; the next
:meth:`TokenProvider.token` then fetches a fresh one.

A provider that must ask the platform (a tenant token, a refreshed user token) does it
through a :class:`Sender`: ``call(endpoint, ...)`` runs the same bounded retry loop as
every other request, with the client's session, timeouts, error mapping and logging.
Providers know nothing of the transport beyond this protocol, and the transport knows
nothing of providers beyond :class:`TokenProvider`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar, runtime_checkable

from .._endpoints import Endpoint
from .._stats import ClientStats

__all__ = ["Sender", "TokenProvider", "check_token"]

T = TypeVar("T")


class Sender(Protocol):
    """What a provider may use of the open client: the request loop and the counters."""

    @property
    def stats(self) -> ClientStats: ...

    async def call(
        self,
        endpoint: Endpoint[T],
        *,
        params: Mapping[str, str] | None = None,
        json: object = None,
        secrets: tuple[str, ...] = (),
    ) -> T:
        """Call ``endpoint`` through the bounded retry loop; ``secrets`` are scrubbed
        from any text of the answer that ends up in an error."""
        ...


@runtime_checkable
class TokenProvider(Protocol):
    """What the request loop needs of a token source.

    ``identity`` names the rate-limit budget (an app id, or :func:`token_identity` of a
    caller's token), never a secret; ``tenant`` the tenant within it (a store app's
    ``tenant_key``, a user's tenant; ``""`` when the app has one tenant), so every
    ``(API, identity, tenant)`` is a bucket of its own. It may change once, when the
    first token tells the provider who it is. ``refresh_codes`` are the platform codes after which
    a fresh token may succeed (empty: nothing to refresh with). ``token`` is awaited
    before every attempt, so it must be cheap when cached; it receives the open client's
    :class:`Sender`. ``invalidate(token)`` is called with a refused token and must drop
    it only if it is still the cached one (concurrent failures share one refresh).
    """

    @property
    def identity(self) -> str: ...

    @property
    def tenant(self) -> str: ...

    @property
    def refresh_codes(self) -> frozenset[int]: ...

    async def token(self, sender: Sender) -> str: ...

    def invalidate(self, token: str) -> None: ...


def check_token(token: object, argument: str = "access_token") -> str:
    """A usable bearer token, or ValueError naming ``argument`` (never echoing the token)."""
    if not isinstance(token, str) or not token:
        raise ValueError(f"{argument}: must be a non-empty string")
    if token != token.strip() or any(c in token for c in " \r\n\t"):
        raise ValueError(f"{argument}: must not contain whitespace (pass the bare token)")
    return token
