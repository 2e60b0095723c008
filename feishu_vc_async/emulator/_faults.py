"""Fault injection: seeded faults of participant_list, armed failures of the token endpoints.

Faults apply to participant_list and meeting_list requests that passed authentication
and the rate-limit gateway (so they count toward the window, as a real backend failure
would). One uniform
draw per request from ``Random(seed)`` picks at most one fault, in the order
``error_rate``, ``reset_rate``, ``truncate_rate``, ``html_rate``: the sequence is the
same on every run with the same seed and the same request order.

:class:`EndpointFailures` is not random: a test arms "the next N requests of this token
endpoint fail" and they do, in the order armed, before the endpoint's own checks.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, get_args

from .._validate import int_between, non_negative_seconds, positive_int, share

__all__ = [
    "FAULT_RATES",
    "ArmedFailure",
    "EndpointFailures",
    "Fault",
    "Faults",
    "Latency",
    "TokenEndpoint",
]

TokenEndpoint = Literal[
    "tenant_token",  # POST /open-apis/auth/v3/tenant_access_token/internal
    "user_token",  # POST /open-apis/authen/v2/oauth/token
    "app_ticket_resend",  # POST /open-apis/auth/v3/app_ticket/resend
    "app_access_token",  # POST /open-apis/auth/v3/app_access_token
    "store_tenant_token",  # POST /open-apis/auth/v3/tenant_access_token
]
TOKEN_ENDPOINTS: tuple[str, ...] = get_args(TokenEndpoint)


@dataclass(frozen=True, slots=True)
class Latency:
    """Added delay before answering: ``constant``, ``uniform`` (low..high) or ``lognormal``.

    For ``lognormal``, ``low`` is the median in seconds and ``high`` the sigma of the
    underlying normal.
    """

    kind: str = "constant"
    low: float = 0.0
    high: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "uniform", "lognormal"):
            raise ValueError(f"latency kind={self.kind!r}: constant, uniform or lognormal")
        non_negative_seconds("latency low", self.low)
        non_negative_seconds("latency high", self.high)

    @classmethod
    def constant(cls, seconds: float) -> Latency:
        return cls("constant", seconds, seconds)

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        return cls("uniform", low, high)

    @classmethod
    def lognormal(cls, median: float, sigma: float = 0.5) -> Latency:
        return cls("lognormal", median, sigma)

    def sample(self, rng: random.Random) -> float:
        if self.kind == "constant":
            return self.low
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        if self.low <= 0:
            return 0.0
        return rng.lognormvariate(math.log(self.low), self.high)


class Fault(enum.Enum):
    NONE = "none"
    SERVER_ERROR = "server_error"  # HTTP error_status with code 121001
    RESET = "reset"  # headers and part of the body sent, then the connection is dropped
    TRUNCATED = "truncated"  # HTTP 200, JSON cut in the middle (Content-Length matches)
    HTML = "html"  # HTTP 502 with a proxy's text/html page


# The rates of the faults one draw picks from, in the order it picks.
FAULT_RATES = ("error_rate", "reset_rate", "truncate_rate", "html_rate")


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong, and how often. All off by default."""

    seed: int = 0
    latency: float | Latency = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    html_rate: float = 0.0
    # Revoke the token used by the Nth request of either VC API (counted from 1), once.
    revoke_token_after: int | None = None
    _rates: tuple[float, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        rates = tuple(share(name, getattr(self, name)) for name in FAULT_RATES)
        if sum(rates) > 1.0:
            raise ValueError(f"{' + '.join(FAULT_RATES)} = {sum(rates):g}: must be at most 1")
        int_between("error_status", self.error_status, 500, 599)
        if self.revoke_token_after is not None:
            positive_int("revoke_token_after", self.revoke_token_after)
        if not isinstance(self.latency, Latency):
            non_negative_seconds("latency", self.latency)
        object.__setattr__(self, "_rates", rates)

    def pick(self, rng: random.Random) -> Fault:
        roll = rng.random()
        for rate, fault in zip(
            self._rates, (Fault.SERVER_ERROR, Fault.RESET, Fault.TRUNCATED, Fault.HTML), strict=True
        ):
            if roll < rate:
                return fault
            roll -= rate
        return Fault.NONE


@dataclass(frozen=True, slots=True)
class ArmedFailure:
    """One armed failure: the endpoint's own error ``code``, or None for a bare HTTP 500."""

    code: int | None


class EndpointFailures:
    """Failures armed per token endpoint, consumed one per request in the order armed."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[ArmedFailure]] = {}

    def arm(self, endpoint: str, times: int, code: int | None) -> None:
        if endpoint not in TOKEN_ENDPOINTS:
            raise ValueError(f"endpoint={endpoint!r}: one of {', '.join(TOKEN_ENDPOINTS)}")
        positive_int("times", times)
        self._queues.setdefault(endpoint, deque()).extend([ArmedFailure(code)] * times)

    def take(self, endpoint: str) -> ArmedFailure | None:
        queue = self._queues.get(endpoint)
        return queue.popleft() if queue else None
