"""A sync's state in the database, and the window each cycle takes from it.

Shared by the in-process :class:`~._run.Sync` and ``feishu-vc sync --broker`` (whose
workers fetch the window): both read the same note, list the same window and move the
watermark by the same rule, so either may continue what the other began.
"""

from __future__ import annotations

import logging

import msgspec

from .._constants import LOGGER_NAME
from ..export import DatabaseOutput
from ._job import LONGEST_MEETING, SyncState

__all__ = ["STATE_NOTE", "cycle_start", "end_cycle", "load_state"]

logger = logging.getLogger(LOGGER_NAME + ".sync")

STATE_NOTE = "sync.state"
_DECODER = msgspec.msgpack.Decoder(SyncState)


async def load_state(output: DatabaseOutput, since: float, now: int) -> SyncState:
    """The state kept in ``output`` (locked), or a first run's: backfill ``since``
    seconds back from ``now``."""
    saved = await output.load_note(STATE_NOTE)
    if saved is not None:
        return _DECODER.decode(saved)
    floor = now - int(since)
    logger.info("first sync: backfilling meetings ended since %d", floor)
    return SyncState(floor=floor, watermark=floor)


def cycle_start(state: SyncState, overlap: float) -> int:
    """Where a cycle lists from (by start time; it lists to now): a meeting that ended
    after the watermark started at most a day before it, and the platform may list it
    up to ``overlap`` late."""
    return max(0, state.watermark - LONGEST_MEETING - int(overlap))


async def end_cycle(output: DatabaseOutput, state: SyncState, now: int, complete: bool) -> None:
    """Count the cycle that listed up to ``now`` and keep the state; the watermark moves
    to ``now`` only when every meeting the cycle found is in the tables (``complete``),
    so a meeting that failed is asked again next cycle."""
    state.cycles += 1
    if complete:
        state.watermark = now
    await output.save_note(STATE_NOTE, msgspec.msgpack.encode(state))
