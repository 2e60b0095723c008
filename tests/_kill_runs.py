"""Running ``feishu-vc`` as a real subprocess and stopping it at an event of the run.

A kill lands at an event the test observes, never after a number of seconds: as the
emulator answers the run's k-th request (recorded before it is sent, so the run has not
seen it), or as soon as a condition the test polls holds (a commit shows in the output,
a data file grew). The run cannot get far ahead of the test: every page it needs is
answered by the test's loop. A loaded machine changes nothing but how long it takes.
"""

from __future__ import annotations

import contextlib
import random
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from feishu_vc_async._constants import MEETING_LIST_PATH, PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, RequestRecord

__all__ = ["DEADLINE", "Kill", "Polled", "draw_kill", "run_until"]

# How long a run may take to reach its kill event (or its end) before the test fails
# rather than hangs: far beyond a loaded machine's pace, never part of a pass.
DEADLINE = 120.0

# A polled kill's condition, made when the run starts (so it can note what was there).
Polled = Callable[["Kill"], Awaitable[Callable[[], Awaitable[bool]]]]


@dataclass(frozen=True)
class Kill:
    """When to stop a run, as an event of the run.

    ``answer``: as the emulator answers the run's ``count``-th participant_list request
    (other pages in flight: a kill mid-page). ``listing``: the same for meeting_list.
    Any other kind is polled: the test's ``polled(kill)`` says when it holds (for
    example ``checkpoint``: the run's first commit shows; ``output``: the data grew;
    ``discovery``: a commit shows a range's listing under way).
    """

    kind: str
    count: int = 1

    def __str__(self) -> str:
        return f"{self.kind}#{self.count}" if self.kind in ("answer", "listing") else self.kind


def draw_kill(rng: random.Random, kinds: tuple[str, ...], most: int) -> Kill:
    kind = rng.choice(kinds)
    return Kill(kind, rng.randint(1, most) if kind in ("answer", "listing") else 1)


@contextlib.contextmanager
def _sigint_as_a_terminal_has_it() -> Iterator[None]:
    """Start children with SIGINT at its default, as a terminal's Ctrl-C finds it.

    A shell starts a background job (``make test &``, nohup, some CI runners) with SIGINT
    ignored; an ignored signal stays ignored across exec, and Python then leaves it so:
    the export would never see the Ctrl-C a test sends it.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def run_until(
    argv: list[str],
    env: dict[str, str],
    log: Path,
    emu: Emulator,
    kill: Kill | None = None,
    *,
    sig: signal.Signals = signal.SIGKILL,
    polled: Polled | None = None,
) -> int:
    """Run to the end, or send ``sig`` at ``kill``'s event; the exit code (-9 when
    killed). Fails the test if neither happens within DEADLINE."""
    with log.open("ab") as sink, _sigint_as_a_terminal_has_it():
        process = await anyio.open_process(argv, env=env, stdout=sink, stderr=sink)
        try:
            with anyio.fail_after(DEADLINE):
                if kill is not None:
                    await _signal_at(process, kill, sig, emu, polled)
                return await process.wait()
        finally:
            emu.on_record(None)
            if process.returncode is None:
                process.kill()
            await process.aclose()


async def _signal_at(
    process: anyio.abc.Process,
    kill: Kill,
    sig: signal.Signals,
    emu: Emulator,
    polled: Polled | None,
) -> None:
    if kill.kind in ("answer", "listing"):
        path = PARTICIPANT_LIST_PATH if kill.kind == "answer" else MEETING_LIST_PATH
        seen = 0

        def answered(record: RequestRecord) -> None:
            nonlocal seen
            if record.path == path and record.status == 200:
                seen += 1
                if seen == kill.count and process.returncode is None:
                    process.send_signal(sig)

        emu.on_record(answered)
        return
    assert polled is not None, f"a polled kill needs its condition: {kill}"
    holds = await polled(kill)
    while not await holds():
        if process.returncode is not None:
            return  # finished first: the caller sees its exit code
        await anyio.sleep(0.005)
    process.send_signal(sig)
