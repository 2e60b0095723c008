"""The one seed behind every random choice a test makes, replayable by its number.

A run uses ``FEISHU_VC_TEST_SEED`` (default: a fixed number, so CI draws the same
choices on every run); ``FEISHU_VC_TEST_SEED=random`` draws a fresh one. pytest prints
the seed in its header, and a test that draws puts it in its failure messages, so any
run can be replayed exactly: ``FEISHU_VC_TEST_SEED=<n> pytest ...``.

Each test derives its own generator from the seed and its own name, so adding,
removing or reordering tests does not change what another test draws.
"""

from __future__ import annotations

import os
import random

__all__ = ["SEED_ENV", "replay_hint", "rng_for", "run_seed"]

SEED_ENV = "FEISHU_VC_TEST_SEED"
_DEFAULT = 20_240_601


def _resolve() -> int:
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return _DEFAULT
    if raw == "random":
        return random.SystemRandom().randrange(1 << 31)
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{SEED_ENV}={raw!r}: must be an integer or 'random'") from None


_SEED = _resolve()


def run_seed() -> int:
    """This run's seed (one for the whole session)."""
    return _SEED


def replay_hint() -> str:
    """What a failure message says so the run can be replayed."""
    return f"{SEED_ENV}={_SEED}"


def rng_for(name: str) -> random.Random:
    """A generator of its own for ``name`` (a test's node id), from this run's seed."""
    return random.Random(f"{_SEED}:{name}")
