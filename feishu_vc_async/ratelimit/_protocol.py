"""What the client needs of a rate limiter, and the names of its budgets."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._constants import DEFAULT_RATE_PERIOD, DEFAULT_RATE_REQUESTS
from .._validate import positive_int, positive_seconds

__all__ = ["LimitKey", "RateLimit", "RateLimiter", "token_identity"]

_RATE_TEXT = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` requests in any ``period`` seconds."""

    requests: int = DEFAULT_RATE_REQUESTS
    period: float = DEFAULT_RATE_PERIOD

    def __post_init__(self) -> None:
        positive_int("requests", self.requests)
        positive_seconds("period", self.period)

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``"100/60s"``, ``"20/1s"``, ``"100/1m"`` → ``RateLimit``; ``ValueError`` otherwise."""
        m = _RATE_TEXT.fullmatch(text)
        if m is None:
            raise ValueError(
                f"rate limit {text!r}: expected N/S with a unit, such as 100/60s or 20/1s"
            )
        count, amount, unit = m.groups()
        return cls(int(count), float(amount) * _UNIT_SECONDS[unit])

    def __str__(self) -> str:
        return f"{self.requests}/{self.period:g}s"


@dataclass(frozen=True, slots=True)
class LimitKey:
    """One budget of the gateway: per API, per app (or token), per tenant.

    ``identity`` is an app id or :func:`token_identity` of a token, never a secret.
    """

    api: str
    identity: str
    tenant: str = ""

    def __str__(self) -> str:
        return f"{self.api}|{self.identity}|{self.tenant}"


def token_identity(token: str) -> str:
    """A stable, non-reversible name for a caller-held token's budget."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]


@runtime_checkable
class RateLimiter(Protocol):
    """Paces requests per :class:`LimitKey`.

    The client calls :meth:`acquire` right before each send (every attempt, retries
    included) and :meth:`report_rate_limited` when the gateway still answers 99991400.
    ``rate`` is the limit it paces each key to: the fan-out sizes its pool from it.
    """

    @property
    def rate(self) -> RateLimit:
        """The limit each key is paced to."""
        ...

    async def acquire(self, key: LimitKey, *, continuing: bool = False) -> None:
        """Wait until ``key`` may send one request. A waiter cancelled before this returns
        consumes no slot. ``continuing``: the request is a later page of a read in
        progress (it carries a page token); a limiter may serve those first, so that a
        long read's pages do not queue behind reads begun after it (the library's
        limiters do), or ignore it."""
        ...

    async def report_rate_limited(self, key: LimitKey, reset_seconds: float | None) -> None:
        """The gateway refused a request of ``key``: hold every caller of ``key`` until
        ``reset_seconds`` (capped; a default when ``None``) have passed."""
        ...

    async def aclose(self) -> None:
        """Release what this limiter holds (connections, registry entries)."""
        ...
