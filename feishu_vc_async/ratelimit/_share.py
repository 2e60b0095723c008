"""What a process of the Redis limiter knows of each key, and its share while Redis is away.

While Redis works, every process is counted in it (``_redis``), and each remembers how
many processes it last saw sharing each key. When Redis goes away the processes can no
longer hear of each other: none can tell whether the others still run or how fast they
send. So each assumes they all still run and send as fast as it does, and paces the key
at its share of the rate, ``Pacing.share(n)``, for the ``n`` it last saw (``_pacing``
shows that ``n`` shares together stay within the limit). Two moments need more care:

* Going to the shares. The shared budget may be spent up to the moment Redis went away,
  so a share starts as if it had just spent its burst: its first send is one share
  interval later. A window across the switch then holds at most what the shared pacing
  would have let through.
* Coming back. The processes find Redis again at different moments (each retries on
  its own clock, up to ``reconnect_interval`` apart), and Redis knows nothing of what
  they sent meanwhile. So for ``reconnect_interval`` plus one period after Redis
  answers again (the handover), a process takes each slot from Redis *and* from its
  share, at the same instant; after that every process still running is back, and no
  send made outside Redis is in any window Redis now paces. During the handover a count
  only rises: the processes reappear one by one in a Redis that may have restarted empty.

A process that has not seen Redis answer for a key knows of no one else: its share is
the whole rate.
"""

from __future__ import annotations

from ._pacing import Pacing
from ._turns import Turns

__all__ = ["KeyState", "ShareBucket"]


class ShareBucket:
    """One key's share in this process: a GCRA on the event loop's clock, and a pause."""

    __slots__ = ("epoch", "pacing", "paused_until", "tat")

    def __init__(self, pacing: Pacing, epoch: int, now: float) -> None:
        self.pacing = pacing
        self.epoch = epoch  # the limiter's count of switches to the shares, when last set
        self.paused_until = 0.0
        self.tat = now
        self.spend(now)

    def spend(self, now: float) -> None:
        """As if the whole burst had just been sent: the next send one interval away."""
        self.tat = max(self.tat, now + self.pacing.burst * self.pacing.interval)

    def wait(self, now: float) -> float:
        """Seconds until a send is allowed (0 or less: now)."""
        p = self.pacing
        return max(self.tat - (p.burst - 1.0) * p.interval, self.paused_until) - now

    def take(self, now: float) -> None:
        self.tat = max(self.tat, now) + self.pacing.interval

    def pause(self, until: float) -> bool:
        """Hold every send until ``until``; False if a pause already lasts as long."""
        if until <= self.paused_until:
            return False
        self.paused_until = until
        return True


class KeyState:
    """A key as this process knows it: whose turn it is, how many processes share it,
    when to be counted again, and its share bucket once Redis has been away."""

    __slots__ = ("beat_due", "bucket", "sharing", "turns", "used")

    def __init__(self) -> None:
        self.turns = Turns()
        self.sharing = 1  # the processes last seen sharing the key, this one included
        self.beat_due = float("-inf")  # loop time from which the next ask is counted
        self.used = float("-inf")  # loop time of the last acquire, for pruning
        self.bucket: ShareBucket | None = None

    def idle(self, now: float, forget_after: float) -> bool:
        return not self.turns.busy and now - self.used > forget_after

    def observe(self, count: int, rising_only: bool) -> None:
        """Redis counted ``count`` processes sharing the key."""
        count = max(count, 1)
        self.sharing = max(self.sharing, count) if rising_only else count

    def share(self, pacing: Pacing, epoch: int, now: float) -> ShareBucket:
        """The share bucket paced at ``pacing``; spent anew after a switch to the shares
        (``epoch`` changed) or when the share changes."""
        bucket = self.bucket
        if bucket is None:
            bucket = self.bucket = ShareBucket(pacing, epoch, now)
        elif bucket.epoch != epoch or bucket.pacing != pacing:
            bucket.pacing, bucket.epoch = pacing, epoch
            bucket.spend(now)
        return bucket
