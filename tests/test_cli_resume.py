"""kill -9 at chosen moments, then --resume: the output equals an uninterrupted run's.

The export runs as a real subprocess (``python -m feishu_vc_async export``) against an
emulator served from this test's event loop. A kill lands at an event the test observes,
never after a number of seconds: as the emulator answers the run's k-th request (the
answer is recorded before it is sent, so the run has not seen it), or as soon as the
run's first commit or first write shows on disk. The run cannot get far ahead of the
test: every page it needs is answered by this loop, so past the event it gets at most the
pages answered within one 5 ms poll (none for an answer event, whose signal goes first),
and it has over a hundred to go. A loaded machine changes nothing but how long it takes.

Which event and which k each kill uses are drawn from the run's seed (``tests/_seed.py``):
failure messages name it, and ``FEISHU_VC_TEST_SEED`` replays it.
"""

from __future__ import annotations

import random
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export._checkpoint import CheckpointFile
from feishu_vc_async.export._file_output import FilePaths
from feishu_vc_async.export._input_writer import write_meetings_csv
from feishu_vc_async.export._state import ExportState
from tests._cli import by_meeting, ground_truth, read_jsonl
from tests._kill_runs import Kill, draw_kill, run_until
from tests._seed import replay_hint

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KILLS = 5


def _argv(emu: Emulator, meetings: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "feishu_vc_async",
        "export",
        "--meetings",
        str(meetings),
        "--out",
        str(out),
        "--base-url",
        emu.base_url,
        "--rate-limit",
        "1000/1s",
        "--concurrency",
        "3",
        "--page-size",
        "20",
        "--progress",
        "none",
        "--resume",
    ]


def _env(emu: Emulator) -> dict[str, str]:
    return {"FEISHU_APP_ID": emu.app_id, "FEISHU_APP_SECRET": emu.app_secret, "PATH": "/usr/bin"}


def _checkpoint(out: Path) -> ExportState | None:
    loaded = CheckpointFile(FilePaths.beside(out).checkpoint).load()
    return None if loaded is None else loaded.state


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _poll_condition(kill: Kill, out: Path, fmt: str) -> Callable[[], bool]:
    paths = FilePaths.beside(out)
    if kill.kind == "checkpoint":
        before = _file_state(paths.checkpoint)
        return lambda: _file_state(paths.checkpoint) not in (None, before)
    if kill.kind == "output":
        data = paths.journal if fmt == "parquet" else paths.out
        size = (_file_state(data) or (0, 0, 0))[0]
        return lambda: (_file_state(data) or (0, 0, 0))[0] > size
    if kill.kind == "discovery":
        state = _checkpoint(out)
        found = len(state.discovery.found) if state and state.discovery else 0

        def discovering() -> bool:
            now = _checkpoint(out)
            return bool(
                now is not None
                and now.discovery is not None
                and not now.discovery.position.done
                and len(now.discovery.found) > found
            )

        return discovering
    raise AssertionError(f"not a polled kill: {kill}")


async def _run(
    argv: list[str],
    env: dict[str, str],
    log: Path,
    emu: Emulator,
    kill: Kill | None = None,
    *,
    sig: signal.Signals = signal.SIGKILL,
    fmt: str = "jsonl",
) -> int:
    out = Path(argv[argv.index("--out") + 1])

    async def polled(kill: Kill) -> Callable[[], Awaitable[bool]]:
        holds = _poll_condition(kill, out, fmt)

        async def check() -> bool:
            return holds()

        return check

    return await run_until(argv, env, log, emu, kill, sig=sig, polled=polled)


def _rows(path: Path, fmt: str) -> Counter[Any]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return Counter(tuple(sorted(r.items())) for r in pq.read_table(path).to_pylist())
    return Counter(msgspec.json.decode(line) and line for line in path.read_bytes().splitlines())


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
async def test_killed_runs_resume_to_the_uninterrupted_output(
    tmp_path: Path, fmt: str, rng: random.Random
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    async with Emulator(
        meetings=40, seed=21, rate_limit=None, latency=0.05, data=MeetingData(webinar_size=300)
    ) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        env = _env(emu)

        reference = tmp_path / f"reference.{fmt}"
        code = await _run(_argv(emu, meetings, reference), env, logs / "reference.log", emu)
        assert code == 0, (logs / "reference.log").read_text()
        pages = sum(1 for r in emu.requests if r.path == PARTICIPANT_LIST_PATH)
        # Each kill ends its run within a few pages of its start, so every run has work
        # left (144 pages, five runs of a few each): every kill lands while running.
        assert pages > 100

        out = tmp_path / f"killed.{fmt}"
        plan = [draw_kill(rng, ("answer", "checkpoint", "output"), 8) for _ in range(KILLS)]
        codes = []
        for n, kill in enumerate(plan):
            argv = _argv(emu, meetings, out)
            codes.append(await _run(argv, env, logs / f"kill{n}.log", emu, kill, fmt=fmt))
        code = await _run(_argv(emu, meetings, out), env, logs / "final.log", emu)
        assert code == 0, (logs / "final.log").read_text()

    context = f"kills {[str(k) for k in plan]} gave {codes}; replay: {replay_hint()}"
    assert codes == [-signal.SIGKILL] * KILLS, context
    want = _rows(reference, fmt)
    got = _rows(out, fmt)
    assert sum(want.values()) > 500
    assert got == want, (
        f"missing {sum((want - got).values())}, extra {sum((got - want).values())}; {context}"
    )
    state = _checkpoint(out)
    assert state is not None
    assert state.finalized
    assert state.rows == sum(want.values())


@pytest.mark.parametrize(("sig", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_interrupt_is_clean(tmp_path: Path, sig: signal.Signals, exit_code: int) -> None:
    """Ctrl-C (SIGINT) and SIGTERM, while pages are still to come, commit the checkpoint
    and say how to continue; the resumed run then completes the same output."""
    async with Emulator(
        meetings=30, seed=4, rate_limit=None, latency=0.05, data=MeetingData(webinar_size=300)
    ) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        out = tmp_path / "out.jsonl"
        argv = _argv(emu, meetings, out)
        # Signalled as the 5th page is answered: the run is well under way (its SIGTERM
        # handler is set before its first request) and has most of its pages to go.
        log = tmp_path / "interrupted.log"
        code = await _run(argv, _env(emu), log, emu, Kill("answer", 5), sig=sig)
        err = log.read_text()
        interrupted = _checkpoint(out)
        final = await _run(argv, _env(emu), tmp_path / "final.log", emu)
        truth = ground_truth(emu, emu.meetings)
    assert code == exit_code, err
    assert "--resume" in err
    assert interrupted is not None
    assert not interrupted.finalized
    assert final == 0, (tmp_path / "final.log").read_text()
    assert by_meeting(read_jsonl(out)) == {k: v for k, v in truth.items() if v}


def _range_argv(emu: Emulator, out: Path, since: int, until: int) -> list[str]:
    argv = _argv(emu, Path("unused"), out)
    at = argv.index("--meetings")
    argv[at : at + 2] = ["--since", str(since), "--until", str(until), "--include-webinars"]
    # meeting_list slow enough that discovery lasts a few pages' worth of seconds.
    return [*argv, "--meeting-list-rate-limit", "2/1s"]


async def test_a_range_export_killed_while_finding_or_fetching_resumes_exactly(
    tmp_path: Path, rng: random.Random
) -> None:
    """kill -9 during discovery (meeting_list pages still to come) and during fetching;
    each --resume continues the listing from its recorded position and the pages from
    theirs: the output equals an uninterrupted run's."""
    logs = tmp_path / "logs"
    logs.mkdir()
    day = 86_400
    anchor = 1_780_000_000 // day * day
    async with Emulator(
        meetings=450,
        seed=22,
        rate_limit=None,
        meeting_list_rate_limit=None,
        latency=0.01,
        data=MeetingData(anchor=anchor, webinar_size=200),
    ) as emu:
        since, until = anchor - 40 * day, anchor
        listed = emu.listed_meetings(since, until, include_webinar=True)
        assert len(listed) > 300  # several meeting_list pages of 100
        env = _env(emu)
        reference = tmp_path / "reference.jsonl"
        argv = _range_argv(emu, reference, since, until)
        code = await _run(argv, env, logs / "ref.log", emu)
        assert code == 0, (logs / "ref.log").read_text()

        out = tmp_path / "killed.jsonl"
        # The first kill lands mid-listing (a commit shows meetings found, more pages to
        # come); the others at any event, a listing answer too while listing goes on.
        plan: list[Kill] = []
        codes: list[int] = []
        killed_while_finding = 0
        for n in range(KILLS):
            state = _checkpoint(out)
            finding = state is None or not (state.discovery and state.discovery.position.done)
            kinds = ("answer", "checkpoint", "output") + ("listing",) * finding
            kill = Kill("discovery") if n == 0 else draw_kill(rng, kinds, 2 if finding else 8)
            plan.append(kill)
            argv = _range_argv(emu, out, since, until)
            codes.append(await _run(argv, env, logs / f"k{n}.log", emu, kill))
            state = _checkpoint(out)
            if state is not None and state.discovery and not state.discovery.position.done:
                killed_while_finding += 1
        code = await _run(_range_argv(emu, out, since, until), env, logs / "final.log", emu)
        assert code == 0, (logs / "final.log").read_text()

    context = f"kills {[str(k) for k in plan]} gave {codes}; replay: {replay_hint()}"
    assert codes == [-signal.SIGKILL] * KILLS, context
    assert killed_while_finding >= 1, f"no kill landed during discovery; {context}"
    want = _rows(reference, "jsonl")
    got = _rows(out, "jsonl")
    assert sum(want.values()) > 1000
    assert got == want, (
        f"missing {sum((want - got).values())}, extra {sum((got - want).values())}; {context}"
    )
    state = _checkpoint(out)
    assert state is not None
    assert state.finalized
    assert state.discovery is not None
    assert len(state.discovery.found) == len(listed)
