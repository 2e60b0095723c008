"""kill -9 at random moments, then --resume: the output equals an uninterrupted run's.

The export runs as a real subprocess (``python -m feishu_vc_async export``) against an
emulator served from this test's event loop, with a per-request latency so that a run
lasts a few seconds and the kills land before, during and between pages.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from feishu_vc_async._constants import MEETING_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export._checkpoint import CheckpointFile
from feishu_vc_async.export._input_writer import write_meetings_csv

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


async def _run(
    argv: list[str],
    env: dict[str, str],
    log: Path,
    kill_after: float | None,
    kill_when: Callable[[], bool] | None = None,
) -> int:
    """Run to the end, or SIGKILL after ``kill_after`` s (or once ``kill_when()`` holds);
    the exit code (-9 when killed)."""
    with log.open("ab") as sink:
        process = await anyio.open_process(argv, env=env, stdout=sink, stderr=sink)
        async with process:
            if kill_after is None and kill_when is None:
                return await process.wait()
            with anyio.move_on_after(kill_after if kill_after is not None else 60.0):
                while kill_when is not None and not kill_when():
                    if process.returncode is not None:
                        return process.returncode
                    await anyio.sleep(0.005)
                if kill_when is None:
                    return await process.wait()
            process.send_signal(signal.SIGKILL)
            return await process.wait()


def _rows(path: Path, fmt: str) -> Counter[Any]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return Counter(tuple(sorted(r.items())) for r in pq.read_table(path).to_pylist())
    return Counter(msgspec.json.decode(line) and line for line in path.read_bytes().splitlines())


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
async def test_killed_runs_resume_to_the_uninterrupted_output(tmp_path: Path, fmt: str) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    logs = tmp_path / "logs"
    logs.mkdir()
    async with Emulator(
        meetings=40, seed=21, rate_limit=None, latency=0.05, data=MeetingData(webinar_size=300)
    ) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        env = _env(emu)

        reference = tmp_path / f"reference.{fmt}"
        started = time.monotonic()
        code = await _run(_argv(emu, meetings, reference), env, logs / "reference.log", None)
        duration = time.monotonic() - started
        assert code == 0, (logs / "reference.log").read_text()

        out = tmp_path / f"killed.{fmt}"
        killed = 0
        moments = []
        for n in range(KILLS):
            # Early enough that most kills land while work is left (each run does some).
            moment = rng.uniform(0.2, max(0.6, duration * 0.3))
            moments.append(round(moment, 2))
            code = await _run(_argv(emu, meetings, out), env, logs / f"kill{n}.log", moment)
            killed += code == -signal.SIGKILL
        code = await _run(_argv(emu, meetings, out), env, logs / "final.log", None)
        assert code == 0, (logs / "final.log").read_text()

    context = f"seed={seed} moments={moments} uninterrupted={duration:.2f}s"
    assert killed >= 3, f"too few kills landed while running: {killed}; {context}"
    want = _rows(reference, fmt)
    got = _rows(out, fmt)
    assert sum(want.values()) > 500
    assert got == want, (
        f"missing {sum((want - got).values())}, extra {sum((got - want).values())}; {context}"
    )
    checkpoint = CheckpointFile(out.with_name(out.name + ".checkpoint.json")).load()
    assert checkpoint is not None
    state = checkpoint.state
    assert state.finalized
    assert state.rows == sum(want.values())


@pytest.mark.parametrize(("sig", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_is_clean(tmp_path: Path, sig: signal.Signals, exit_code: int) -> None:
    """Ctrl-C (SIGINT) and SIGTERM commit the checkpoint and say how to continue; the
    resumed run then completes the same output."""

    async def scenario() -> tuple[int, str, int]:
        async with Emulator(
            meetings=30, seed=4, rate_limit=None, latency=0.05, data=MeetingData(webinar_size=300)
        ) as emu:
            meetings = tmp_path / "meetings.csv"
            write_meetings_csv(meetings, emu.meetings)
            out = tmp_path / "out.jsonl"
            argv = _argv(emu, meetings, out)
            process = await anyio.open_process(
                argv, env=_env(emu), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            async with process:
                await anyio.sleep(1.2)
                process.send_signal(sig)
                code = await process.wait()
                assert process.stderr is not None
                err = (await process.stderr.receive()).decode()
            final = await _run(argv, _env(emu), tmp_path / "final.log", None)
            return code, err, final

    code, err, final = anyio.run(scenario)
    assert code == exit_code, err
    assert "--resume" in err
    assert final == 0


def _listing_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path == MEETING_LIST_PATH and r.status == 200)


def _range_argv(emu: Emulator, out: Path, since: int, until: int) -> list[str]:
    argv = _argv(emu, Path("unused"), out)
    at = argv.index("--meetings")
    argv[at : at + 2] = ["--since", str(since), "--until", str(until), "--include-webinars"]
    # meeting_list slow enough that discovery lasts a few pages' worth of seconds.
    return [*argv, "--meeting-list-rate-limit", "2/1s"]


async def test_a_range_export_killed_while_finding_or_fetching_resumes_exactly(
    tmp_path: Path,
) -> None:
    """kill -9 during discovery (meeting_list pages still to come) and during fetching;
    each --resume continues the listing from its recorded position and the pages from
    theirs: the output equals an uninterrupted run's."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
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
        started = time.monotonic()
        code = await _run(_range_argv(emu, reference, since, until), env, logs / "ref.log", None)
        duration = time.monotonic() - started
        assert code == 0, (logs / "ref.log").read_text()

        out = tmp_path / "killed.jsonl"
        moments: list[object] = []
        killed_while_finding = killed = 0
        for n in range(KILLS):
            argv = _range_argv(emu, out, since, until)
            if n == 0:
                # The first kill lands mid-listing: after two meeting_list pages of this run.
                listed_before = _listing_requests(emu)
                moments.append("2 pages")
                code = await _run(
                    argv,
                    env,
                    logs / f"k{n}.log",
                    None,
                    kill_when=lambda before=listed_before: _listing_requests(emu) >= before + 2,
                )
            else:
                moment = rng.uniform(0.3, max(0.8, duration * 0.6))
                moments.append(round(moment, 2))
                code = await _run(argv, env, logs / f"k{n}.log", moment)
            if code == -signal.SIGKILL:
                killed += 1
                loaded = CheckpointFile(out.with_name(out.name + ".checkpoint.json")).load()
                state = None if loaded is None else loaded.state
                if state is not None and state.discovery and not state.discovery.position.done:
                    killed_while_finding += 1
        code = await _run(_range_argv(emu, out, since, until), env, logs / "final.log", None)
        assert code == 0, (logs / "final.log").read_text()

    context = f"seed={seed} moments={moments} uninterrupted={duration:.2f}s"
    assert killed >= 3, f"too few kills landed while running: {killed}; {context}"
    assert killed_while_finding >= 1, f"no kill landed during discovery; {context}"
    want = _rows(reference, "jsonl")
    got = _rows(out, "jsonl")
    assert sum(want.values()) > 1000
    assert got == want, (
        f"missing {sum((want - got).values())}, extra {sum((got - want).values())}; {context}"
    )
    checkpoint = CheckpointFile(out.with_name(out.name + ".checkpoint.json")).load()
    assert checkpoint is not None
    state = checkpoint.state
    assert state.finalized
    assert state.discovery is not None
    assert len(state.discovery.found) == len(listed)
