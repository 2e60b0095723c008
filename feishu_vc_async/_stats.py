"""Live counters of one client, read by progress displays and the fan-out."""

from __future__ import annotations

import math
import time
from collections import deque

__all__ = ["ClientStats"]

# Send times kept for recent_rate(); bounded so a benchmark at thousands of requests/s
# costs no memory growth (the rate is then measured over the kept span).
_RECENT_MAX = 4096
# Service latencies kept for latency_quantile(): recent enough to follow a change.
_LATENCIES_MAX = 128


class ClientStats:
    """Counters since the client was created (they survive re-entering the client).

    * ``requests``: attempts sent to participant_list (retries included)
    * ``pages``: attempts answered with a page (code 0)
    * ``retries``: attempts repeated after a transient failure or a refreshed token
    * ``rate_limited``: 99991400 answers seen (HTTP 429 or 400)
    * ``token_fetches``: tenant token requests and user-token refresh calls
    * ``errors``: calls that ended in an exception raised to the caller

    :meth:`latency_quantile` reads the service latency of recent answers: from the send
    to the whole body, without the wait for a rate-limiter slot or a token.
    """

    __slots__ = (
        "_latencies",
        "_sent",
        "errors",
        "pages",
        "rate_limited",
        "requests",
        "retries",
        "token_fetches",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.pages = 0
        self.retries = 0
        self.rate_limited = 0
        self.token_fetches = 0
        self.errors = 0
        self._sent: deque[float] = deque(maxlen=_RECENT_MAX)
        self._latencies: deque[float] = deque(maxlen=_LATENCIES_MAX)

    def record_request(self) -> None:
        self.requests += 1
        self._sent.append(time.monotonic())

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
        if window <= 0:
            raise ValueError(f"window={window!r}: must be more than 0 seconds")
        now = time.monotonic()
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
            "pages": self.pages,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "token_fetches": self.token_fetches,
            "errors": self.errors,
        }

    def __repr__(self) -> str:
        fields = " ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"<ClientStats {fields}>"
