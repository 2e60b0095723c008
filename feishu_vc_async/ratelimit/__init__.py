"""Rate limiting per (API, app, tenant): the protocol, in-process and Redis limiters.

``RedisRateLimiter`` imports redis-py only when one is created, so the base install
works without the ``redis`` extra.
"""

from ._limits import Budget, Limits, OpenLimits
from ._local import LocalRateLimiter, SharedRateLimiter
from ._pacing import Pacing
from ._protocol import LimitKey, RateLimit, RateLimiter, token_identity
from ._redis import RedisRateLimiter

__all__ = [
    "Budget",
    "LimitKey",
    "Limits",
    "LocalRateLimiter",
    "OpenLimits",
    "Pacing",
    "RateLimit",
    "RateLimiter",
    "RedisRateLimiter",
    "SharedRateLimiter",
    "token_identity",
]
