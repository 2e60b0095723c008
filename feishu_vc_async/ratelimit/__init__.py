"""Rate limiting per (API, app, tenant): the protocol, in-process and Redis limiters."""

from ._local import LocalRateLimiter, SharedRateLimiter
from ._pacing import Pacing
from ._protocol import LimitKey, RateLimit, RateLimiter, token_identity

__all__ = [
    "LimitKey",
    "LocalRateLimiter",
    "Pacing",
    "RateLimit",
    "RateLimiter",
    "SharedRateLimiter",
    "token_identity",
]
