"""Each API's budget, as a client is given it (:class:`Limits`), and the limiters that
pace it while the client is open (:class:`OpenLimits`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .._constants import API_MEETING_LIST, API_PARTICIPANT_LIST
from ._local import LocalRateLimiter
from ._protocol import RateLimit, RateLimiter

__all__ = ["Budget", "Limits", "OpenLimits"]

# A rate (an in-process limiter), a limiter of the caller's, or None: not paced.
Budget = RateLimit | RateLimiter | None


@dataclass(frozen=True, slots=True)
class Limits:
    """The budget of each API the gateway counts apart (per app and tenant).

    Each is a :class:`RateLimit` (paced by an in-process limiter shared by every client
    of the same app in one event loop), a :class:`RateLimiter` of the caller's (a
    :class:`~feishu_vc_async.ratelimit.RedisRateLimiter` shared by processes, say: its own
    ``rate`` is then the budget, and it is the caller's to close), or ``None`` (not
    paced: only for the emulator and benchmarks). Both default to the platform's 100
    requests per 60 s.
    """

    participant_list: Budget = field(default_factory=RateLimit)
    meeting_list: Budget = field(default_factory=RateLimit)

    def __post_init__(self) -> None:
        for spec in fields(self):
            budget = getattr(self, spec.name)
            if budget is not None and not isinstance(budget, RateLimit | RateLimiter):
                raise TypeError(
                    f"limits.{spec.name}: must be a RateLimit, a RateLimiter (acquire, "
                    f"report_rate_limited, aclose and a `rate` property) or None, got "
                    f"{type(budget).__name__}"
                )

    @classmethod
    def unlimited(cls) -> Limits:
        """Neither API paced (the emulator without a gateway, benchmarks)."""
        return cls(participant_list=None, meeting_list=None)

    def budgets(self) -> dict[str, Budget]:
        """Bucket name (an endpoint's ``bucket``) → its budget."""
        return {API_PARTICIPANT_LIST: self.participant_list, API_MEETING_LIST: self.meeting_list}

    def rate(self, bucket: str) -> RateLimit | None:
        """The limit ``bucket`` is paced to: a given limiter's own rate, else the rate."""
        budget = self.budgets()[bucket]
        return budget if budget is None or isinstance(budget, RateLimit) else budget.rate


class OpenLimits:
    """The limiters of an open client, by bucket: the caller's as given, and handles on
    the loop's shared in-process limiter for rates (owned here, closed by :meth:`aclose`)."""

    def __init__(self, limits: Limits) -> None:
        self.limiters: dict[str, RateLimiter] = {}
        self._owned: list[RateLimiter] = []
        for bucket, budget in limits.budgets().items():
            if isinstance(budget, RateLimit):
                handle = LocalRateLimiter.shared(budget)
                self._owned.append(handle)
                self.limiters[bucket] = handle
            elif budget is not None:
                self.limiters[bucket] = budget

    async def aclose(self) -> None:
        owned, self._owned = self._owned, []
        for handle in owned:
            await handle.aclose()
