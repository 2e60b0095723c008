"""The limit a client is told in a real-time test judged by the emulator's gateway.

The limiter hands out slots evenly; the gateway stamps a request when its handler
starts. In between lies the time the loop takes to send and read it: a millisecond on a
quiet machine, but whenever a loaded 2-core machine deschedules the process, tens of
milliseconds and now and then a few hundred. A request held back that way lands nearer
the next ones than its slot was, and the default margin (1 % of the period: 10 ms at a
scaled 1 s) does not cover it. So these tests tell the client a period ``JITTER``
seconds longer than the gateway's: the gateway refuses only a request held back longer
than that. The limiter's own exact bounds are checked on virtual time
(``test_ratelimit_local``, ``test_ratelimit_virtual``); here the judge is the gateway's
log: every request paced, no 429, no window of the gateway's period over its limit.
"""

from __future__ import annotations

from feishu_vc_async.ratelimit import RateLimit

__all__ = ["JITTER", "client_limit"]

JITTER = 0.3


def client_limit(gateway: RateLimit) -> RateLimit:
    """What the client paces to when the gateway enforces ``gateway``."""
    return RateLimit(gateway.requests, gateway.period + JITTER)
