"""Live counters of one client, per endpoint, read by progress displays and the fan-out."""

from __future__ import annotations

import math
from collections import deque

from ._clock import Clock, loop_time
from ._constants import API_PARTICIPANT_LIST
from ._validate import positive_seconds

__all__ = ["ClientStats", "EndpointStats"]

# Send times kept for recent_rate(); bounded so a benchmark at thousands of requests/s
# costs no memory growth (the rate is then measured over the kept span).
_RECENT_MAX = 4096
# Service latencies kept for latency_quantile(): recent enough to follow a change.
_LATENCIES_MAX = 128
# The endpoint whose counters ClientStats shows at its top level.
_PRIMARY = API_PARTICIPANT_LIST


class EndpointStats:
    """Counters of one endpoint since the client was created.

    * ``requests``: attempts sent (retries included)
    * ``answers``: attempts answered with a value (code 0)
    * ``retries``: attempts repeated after a transient failure or a refreshed token
    * ``rate_limited``: 99991400 answers seen (HTTP 429 or 400)
    * ``errors``: calls that ended in an exception raised to the caller

    :meth:`latency_quantile` reads the service latency of recent answers: from the send
    to the whole body, without the wait for a rate-limiter slot or a token.
    """

    __slots__ = (
        "_clock",
        "_latencies",
        "_sent",
        "answers",
        "errors",
        "rate_limited",
        "requests",
        "retries",
    )

    def __init__(self, clock: Clock = loop_time) -> None:
        self._clock = clock
        self.requests = 0
        self.answers = 0
        self.retries = 0
        self.rate_limited = 0
        self.errors = 0
        self._sent: deque[float] = deque(maxlen=_RECENT_MAX)
        self._latencies: deque[float] = deque(maxlen=_LATENCIES_MAX)

    def record_request(self) -> float:
        """Count one attempt; returns the send time (the clock's), for its latency."""
        now = self._clock()
        self.requests += 1
        self._sent.append(now)
        return now

    def record_answer(self, sent_at: float) -> None:
        """The attempt sent at ``sent_at`` got a whole answer (of any kind)."""
        self.record_latency(self._clock() - sent_at)

    def record_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)

    def latency_quantile(self, q: float = 0.9) -> float | None:
        """The ``q`` quantile of recent service latencies in seconds; ``None`` before any."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q={q!r}: must be between 0 and 1")
        if not self._latencies:
            return None
        ordered = sorted(self._latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def recent_rate(self, window: float = 10.0) -> float:
        """Requests per second over the last ``window`` seconds."""
        positive_seconds("window", window)
        now = self._clock()
        cutoff = now - window
        sent = self._sent
        count = 0
        for stamp in reversed(sent):
            if stamp < cutoff:
                break
            count += 1
        if count == len(sent) == _RECENT_MAX:
            # Every kept stamp is inside the window: measure over the span we still see.
            span = now - sent[0]
            return count / span if span > 0 else float(count)
        return count / window

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "answers": self.answers,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
        }

    def __repr__(self) -> str:
        fields = " ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"<EndpointStats {fields}>"


class ClientStats:
    """The counters of one client (they survive re-entering it): one
    :class:`EndpointStats` per endpoint called, by endpoint name (:meth:`endpoint`), and
    ``token_fetches`` (token requests and user-token refreshes).

    The top-level counters and rates are participant_list's, the endpoint a fan-out
    pages through: ``requests``, ``pages`` (its answers), ``retries``,
    ``rate_limited``, ``errors``, :meth:`recent_rate`, :meth:`latency_quantile`.
    """

    __slots__ = ("_clock", "_endpoints", "token_fetches")

    def __init__(self, clock: Clock = loop_time) -> None:
        self._clock = clock
        self._endpoints: dict[str, EndpointStats] = {}
        self.token_fetches = 0

    def endpoint(self, name: str) -> EndpointStats:
        """The counters of the endpoint called ``name`` (created empty on first use)."""
        found = self._endpoints.get(name)
        if found is None:
            found = self._endpoints[name] = EndpointStats(self._clock)
        return found

    @property
    def endpoints(self) -> dict[str, EndpointStats]:
        """Every endpoint called so far, by name."""
        return dict(self._endpoints)

    @property
    def requests(self) -> int:
        return self.endpoint(_PRIMARY).requests

    @property
    def pages(self) -> int:
        return self.endpoint(_PRIMARY).answers

    @property
    def retries(self) -> int:
        return self.endpoint(_PRIMARY).retries

    @property
    def rate_limited(self) -> int:
        return self.endpoint(_PRIMARY).rate_limited

    @property
    def errors(self) -> int:
        return self.endpoint(_PRIMARY).errors

    def recent_rate(self, window: float = 10.0) -> float:
        return self.endpoint(_PRIMARY).recent_rate(window)

    def latency_quantile(self, q: float = 0.9) -> float | None:
        return self.endpoint(_PRIMARY).latency_quantile(q)

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "pages": self.pages,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "token_fetches": self.token_fetches,
            "errors": self.errors,
        }

    def __repr__(self) -> str:
        fields = " ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"<ClientStats {fields}>"
