"""`feishu-vc export` as a user and as a store app's tenant, end to end over real sockets.

* a scaled export with user tokens that live two seconds: they are refreshed over and
  over, every participant arrives exactly once, and no token shows in any text;
* three processes share one token store and export at once: the session survives
  (no 20064/20073) and the store ends with the last refresh token issued;
* a replayed refresh token stops the run with "log in again", exit 2;
* a store app's tenant exported with a stale app_ticket in the file: a resend, the push
  (to the test's event endpoint, which writes the file), and the export goes on.

The emulator serves from the test's loop; the CLI runs in a worker thread, or in
subprocesses for the three-process test.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from feishu_vc_async import Limits, RateLimit, VCClient
from feishu_vc_async._constants import APP_TICKET_RESEND_PATH, USER_TOKEN_PATH
from feishu_vc_async.auth import (
    FileSessionStore,
    FileTicketStore,
    MemorySessionStore,
    UserSessionProvider,
)
from feishu_vc_async.emulator import AppTickets, Clocks, Emulator, UserOAuth
from feishu_vc_async.export._input_writer import write_meetings_csv
from feishu_vc_async.export._rows import RowBuilder
from feishu_vc_async.models import MeetingQuery, Participant
from tests._cli import by_meeting as _by_meeting
from tests._cli import export_argv as _export_argv
from tests._cli import meeting_key as _meeting_key
from tests._cli import read_jsonl as _read_jsonl
from tests._cli import run_cli
from tests._login import FakeClock
from tests._sessions import leaks, refreshes, sign_in, user_token_records
from tests._ticket_endpoint import TicketEndpoint

pytestmark = pytest.mark.anyio

_REFRESHED = re.compile(r"user session of .* refreshed \(app ")
_ADOPTED = "using the one refreshed elsewhere"


def _env(emu: Emulator, **extra: str) -> dict[str, str]:
    return {"FEISHU_APP_ID": emu.app_id, "FEISHU_APP_SECRET": emu.app_secret, **extra}


def _export(emu: Emulator, meetings: Path, out: Path, *extra: str) -> list[str]:
    """test_cli_export's command line, logging at -vv (every request: the leak check
    reads it); ``extra`` wins over its defaults (a later option replaces an earlier one)."""
    return ["-vv", *_export_argv(emu, meetings, out, *extra)]


def _truth(
    participants: Callable[[MeetingQuery], list[Participant]], queries: Sequence[MeetingQuery]
) -> dict[str, list[dict[str, Any]]]:
    builder = RowBuilder()
    return {
        _meeting_key(q.meeting_no, q.meeting_start_time): builder.rows(q, participants(q))
        for q in queries
    }


def _written(out: Path) -> list[str]:
    """Every file the export left beside its output, read as text (the token file is
    elsewhere: it is the one place tokens are meant to be)."""
    return [p.read_text(errors="replace") for p in out.parent.iterdir() if p.is_file()]


async def _stored_session(emu: Emulator, token_file: Path, clock: Callable[[], float]) -> None:
    session = await sign_in(emu, clock=clock)
    FileSessionStore(token_file, base_url=emu.base_url, app_id=emu.app_id).write(session)


@pytest.mark.slow
async def test_an_export_with_one_second_user_tokens_refreshes_throughout(
    tmp_path: Path,
) -> None:
    rate = RateLimit(100, 3.0)
    token_file = tmp_path / "config" / "tokens.json"
    out = tmp_path / "out" / "participants.jsonl"
    # One-second tokens (the shortest the platform's whole-second expires_in can say) are
    # refreshed every half second: 20 refreshes take ten seconds, not twenty.
    async with Emulator(
        meetings=330, seed=21, rate_limit=rate, oauth=UserOAuth(user_token_lifetime=1.0)
    ) as emu:
        truth = _truth(emu.participants, emu.meetings)  # generated before the clock runs
        await _stored_session(emu, token_file, clock=time.time)
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        argv = _export(
            emu,
            meetings,
            out,
            "--auth",
            "user",
            "--token-file",
            str(token_file),
            "--rate-limit",
            str(rate),
            # One request at a time: a token is used within one slot of being taken (a
            # pool would hold it through the queue at the limiter, close to its end).
            "--concurrency",
            "1",
        )
        code, stdout, stderr = await run_cli(argv, _env(emu))
        assert code == 0, stderr
        assert refreshes(emu) >= 20
        assert {r.code for r in user_token_records(emu)} == {0}
        assert _by_meeting(_read_jsonl(out)) == truth
        assert not out.with_name(out.name + ".failures.jsonl").exists()
        assert f"Exported {len(emu.meetings)} of {len(emu.meetings)} meetings" in stdout
        assert len(_REFRESHED.findall(stderr)) == refreshes(emu)
        assert "status=200 code=0" in stderr  # -vv logged every request
        assert leaks(emu, [stdout, stderr, *_written(out)], emu.app_secret) == []
        stored = FileSessionStore(token_file, base_url=emu.base_url, app_id=emu.app_id).read()
        assert stored is not None
        assert emu.live_refresh_tokens() == [stored.refresh_token]


@pytest.mark.slow
@pytest.mark.parametrize("lock", ["file", "redis"])
async def test_three_processes_share_one_session_and_it_survives(
    tmp_path: Path, lock: str, request: pytest.FixtureRequest
) -> None:
    # With Redis the processes share the lock and the limit (so 30/s among them, 10/s
    # each); without it, each paces 10/s alone and the file lock guards the session.
    shared = (
        [
            "--redis-url",
            request.getfixturevalue("redis_url"),
            "--redis-prefix",
            f"feishu_vc_test_{os.getpid()}",
            "--rate-limit",
            "30/1s",
        ]
        if lock == "redis"
        else ["--rate-limit", "10/1s"]
    )
    token_file = tmp_path / "tokens.json"
    # Two-second tokens: a process that adopts a session another just refreshed uses it
    # for up to half its life, and its requests then wait for slots of a shared budget;
    # one-second tokens leave a loaded machine too little of the other half.
    async with Emulator(
        meetings=240, seed=22, rate_limit=None, oauth=UserOAuth(user_token_lifetime=2.0)
    ) as emu:
        await _stored_session(emu, token_file, clock=time.time)
        parts = [emu.meetings[i::3] for i in range(3)]
        truth = [_truth(emu.participants, part) for part in parts]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FEISHU_")},
            **_env(emu),
        }
        procs = []
        for i, part in enumerate(parts):
            meetings = tmp_path / f"meetings{i}.csv"
            write_meetings_csv(meetings, part)
            argv = _export(
                emu,
                meetings,
                tmp_path / f"out{i}" / "participants.jsonl",
                "--auth",
                "user",
                "--token-file",
                str(token_file),
                *shared,
            )
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "feishu_vc_async",
                    *argv,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        with anyio.fail_after(120):
            results = await asyncio.gather(*(p.communicate() for p in procs))
        texts = [part.decode() for pair in results for part in pair]
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err.decode()[-3000:]
        for i in range(3):
            assert _by_meeting(_read_jsonl(tmp_path / f"out{i}" / "participants.jsonl")) == truth[i]
        # The session survived: every refresh was accepted, none replayed a used token.
        codes = [r.code for r in user_token_records(emu)]
        assert 20064 not in codes
        assert 20073 not in codes
        assert set(codes) == {0}
        total = refreshes(emu)
        assert total >= 8
        own = [len(_REFRESHED.findall(err.decode())) for _, err in results]
        adopted = [err.decode().count(_ADOPTED) for _, err in results]
        assert sum(own) == total  # every refresh was one process's, under the lock
        # Each process renewed its session many times: by refreshing it, or by finding,
        # once it held the lock, the session another process had just refreshed. Which
        # one refreshes is a race (the last refresher's pacing is often in front), so
        # only the sum is fixed.
        assert all(o + a >= 5 for o, a in zip(own, adopted, strict=True)), (own, adopted)
        stored = FileSessionStore(token_file, base_url=emu.base_url, app_id=emu.app_id).read()
        assert stored is not None
        assert emu.live_refresh_tokens() == [stored.refresh_token]  # the last one issued
        written = [
            t for i in range(3) for t in _written(tmp_path / f"out{i}" / "participants.jsonl")
        ]
        assert leaks(emu, [*texts, *written], emu.app_secret) == []


async def test_a_replayed_refresh_token_stops_the_export_saying_log_in_again(
    tmp_path: Path,
) -> None:
    server = FakeClock(0.0)
    token_file = tmp_path / "tokens.json"
    out = tmp_path / "out" / "p.jsonl"
    async with Emulator(
        meetings=5, seed=23, rate_limit=None, clocks=Clocks(monotonic=server)
    ) as emu:
        first = await sign_in(emu, clock=time.time)
        # Another holder of the same tokens refreshed them without this store knowing.
        other = UserSessionProvider(
            emu.app_id, emu.app_secret, MemorySessionStore(first), clock=lambda: time.time() + 7000
        )
        async with VCClient(
            other,
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as c:
            await c.participant_list(emu.meetings[0])
        FileSessionStore(token_file, base_url=emu.base_url, app_id=emu.app_id).write(first)
        server.now += 7300  # the stored access token has expired at the platform
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        argv = _export(emu, meetings, out, "--auth", "user", "--token-file", str(token_file))
        code, stdout, stderr = await run_cli(argv, _env(emu))
        assert code == 2
        assert (
            "the user session ended: the user must sign in again: run `feishu-vc auth login`"
            in stderr
        )
        assert "code=20073" in stderr
        assert [r.code for r in user_token_records(emu)][-1] == 20073
        assert leaks(emu, [stdout, stderr, *_written(out)], emu.app_secret) == []


async def test_auth_options_are_checked_before_any_request(tmp_path: Path) -> None:
    meetings = tmp_path / "m.csv"
    write_meetings_csv(meetings, [])
    base = ["export", "--meetings", str(meetings), "--out", str(tmp_path / "o.jsonl")]
    env = {"FEISHU_APP_ID": "cli_a", "FEISHU_APP_SECRET": "s"}
    cases = [
        (
            ["--auth", "user", "--token-file", str(tmp_path / "none.json")],
            env,
            "--auth user: no login for app cli_a at https://open.feishu.cn in",
        ),
        (["--auth", "user"], {}, "--auth user (to refresh the session) needs app credentials"),
        (
            ["--auth", "user", "--tenant-key", "k"],
            env,
            "--tenant-key does not apply to --auth user",
        ),
        (["--token-file", "x"], env, "--token-file does not apply to --auth tenant"),
        (["--app-type", "store"], env, "--app-type store needs --tenant-key"),
        (
            ["--app-type", "store", "--tenant-key", "k"],
            env,
            "needs the app_ticket: --app-ticket-file FILE or FEISHU_APP_TICKET",
        ),
        (
            ["--app-type", "store", "--tenant-key", "k", "--app-ticket-file", "nope"],
            env,
            "--app-ticket-file nope: no such file",
        ),
        (["--tenant-key", "k"], env, "--tenant-key does not apply to --app-type custom"),
    ]
    # An empty ticket file is named as such, not left for the platform to refuse.
    store = ["--app-type", "store", "--tenant-key", "k", "--app-ticket-file"]
    for content in ("", " \n\t\n"):
        empty = tmp_path / "app_ticket"
        empty.write_text(content)
        cases.append(
            (
                [*store, str(empty)],
                env,
                f"feishu-vc export: error: --app-ticket-file {empty} is empty: it should hold "
                "the store app's current app_ticket (your event handler writes it there), "
                "and nothing else\n",
            )
        )
    cases.append(
        (
            store[:4],
            {**env, "FEISHU_APP_TICKET": "  "},
            "$FEISHU_APP_TICKET: must be a non-empty app_ticket",
        )
    )
    for extra, environment, message in cases:
        code, _, err = await run_cli([*base, *extra], environment)
        assert code == 2, (extra, err)
        assert message in err, (extra, err)


@pytest.mark.parametrize("source", ["file", "env"])
async def test_a_store_app_tenant_export_recovers_a_stale_ticket(
    tmp_path: Path, source: str
) -> None:
    ticket_file = tmp_path / "app_ticket"
    async with (
        TicketEndpoint(FileTicketStore(ticket_file)) as events,
        Emulator(
            meetings=6, seed=24, rate_limit=None, tickets=AppTickets(ticket_callback_url=events.url)
        ) as emu,
    ):
        app = emu.add_store_app(tenants=2)
        key = app.tenant_keys[1]
        truth = emu.tenant(key)
        stale = emu.app_ticket(app.app_id)
        emu.rotate_app_ticket(app.app_id)
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, truth.meetings)
        out = tmp_path / "out" / "p.jsonl"
        env = {"FEISHU_APP_ID": app.app_id, "FEISHU_APP_SECRET": app.app_secret}
        extra = ["--app-type", "store", "--tenant-key", key]
        if source == "file":
            ticket_file.write_text(stale + "\n")
            extra += ["--app-ticket-file", str(ticket_file)]
        else:
            env["FEISHU_APP_TICKET"] = stale
        code, stdout, stderr = await run_cli(_export(emu, meetings, out, *extra), env)
        secrets = [*emu.issued_tokens(), app.app_secret]
        if source == "file":
            assert code == 0, stderr
            assert _by_meeting(_read_jsonl(out)) == _truth(truth.participants, truth.meetings)
            assert ticket_file.read_text().strip() == emu.app_ticket(app.app_id)
            assert events.pushes == 1
        else:  # a fixed ticket cannot be replaced while the run waits: a clear stop
            assert code == 2
            assert (
                "the app_ticket in $FEISHU_APP_TICKET is stale, and no new one came within 0 s "
                "of a resend request"
            ) in stderr
            assert "StaticTicket" not in stderr
        assert [r.path for r in emu.requests].count(APP_TICKET_RESEND_PATH) == 1
        assert not [r for r in emu.requests if r.path == USER_TOKEN_PATH]
        texts = [stdout, stderr, *_written(out)]
        assert [s[:8] for s in secrets if any(s in t for t in texts)] == []
