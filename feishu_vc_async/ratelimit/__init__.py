"""Rate limiting per (API, app, tenant): the protocol, in-process and Redis limiters."""

from ._protocol import LimitKey, RateLimit, RateLimiter, token_identity

__all__ = ["LimitKey", "RateLimit", "RateLimiter", "token_identity"]
