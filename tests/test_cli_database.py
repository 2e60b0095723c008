"""``feishu-vc export --out postgresql://... | sqlite:///...`` as users run it.

Bad input (an unreachable database, a refused login, a missing database or permission,
tables of another shape or a newer version) exits 2 with a message naming it, before
any request to the platform. ``kill -9`` at events drawn from the run's seed (during
discovery, fetching and commits), rerun until done: the tables equal the emulator's
ground truth, every participant exactly once, in both databases.
"""

from __future__ import annotations

import random
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import astuple

from feishu_vc_async.emulator import Emulator, MeetingData
from tests._cli import FAST, app_env, run_cli
from tests._databases import POSTGRES_URL, TestDatabase
from tests._kill_runs import Kill, draw_kill, run_until
from tests._seed import replay_hint

pytestmark = pytest.mark.anyio

DAY = 86_400
ANCHOR = 1_780_000_000 // DAY * DAY
SINCE, UNTIL = ANCHOR - 40 * DAY, ANCHOR


def _export_argv(emu: Emulator, out: list[str], *extra: str) -> list[str]:
    since_until = ["--since", str(SINCE), "--until", str(UNTIL)]
    return ["export", *since_until, *out, "--base-url", emu.base_url, *FAST, *extra]


async def _refused(emu: Emulator, out: list[str], *extra: str) -> str:
    """Runs the export; asserts exit 2 and no request; returns what it said."""
    code, _, err = await run_cli(_export_argv(emu, out, *extra), app_env(emu))
    assert code == 2, err
    assert emu.requests == [], "a request was sent before the database was checked"
    return err


@pytest.mark.usefixtures("postgres_url")
async def test_an_unusable_postgresql_is_refused_before_any_request() -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = POSTGRES_URL.rsplit("/", 1)[0]
    role = f"feishu_vc_nopriv_{uuid.uuid4().hex[:8]}"
    async with Emulator(meetings=5, seed=41, rate_limit=None) as emu:
        said = await _refused(emu, ["--out", "postgresql://postgres@127.0.0.1:1/test"])
        assert "cannot be reached" in said
        said = await _refused(emu, ["--out", f"postgresql://{role}:s3cret@127.0.0.1:5432/test"])
        assert "refused the login" in said
        assert role in said
        assert "s3cret" not in said
        said = await _refused(emu, ["--out", f"{base}/no_such_db_{schema}"])
        assert "has no such database" in said
        async with _admin() as admin:
            await admin.execute(f'CREATE ROLE "{role}" LOGIN')
            await admin.execute(f'CREATE SCHEMA "{schema}"')
            try:
                url = f"postgresql://{role}@127.0.0.1:5432/test"
                said = await _refused(emu, ["--out", url, "--db-schema", schema])
                assert "refused a permission" in said
            finally:
                await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
                await admin.execute(f'DROP ROLE "{role}"')
        said = await _refused(emu, ["--out", POSTGRES_URL, "--db-schema", "no-dashes"])
        assert "--db-schema 'no-dashes'" in said


async def test_tables_of_another_shape_or_version_are_refused_before_any_request(
    database: TestDatabase,
) -> None:
    async with Emulator(meetings=5, seed=42, rate_limit=None) as emu:
        if database.schema is not None:
            await database.execute(f'CREATE SCHEMA "{database.schema}"')
        participants = database.table("feishu_vc_participants")
        await database.execute(f"CREATE TABLE {participants} (id integer, note text)")
        said = await _refused(emu, database.cli_args)
        assert "feishu_vc_participants of another shape" in said
        assert "not ours ['id', 'note']" in said
        version = database.table("feishu_vc_schema")
        await database.execute(
            f"DROP TABLE {participants}; CREATE TABLE {version} (version integer NOT NULL); "
            f"INSERT INTO {version} VALUES (99)"
        )
        said = await _refused(emu, database.cli_args)
        assert "schema version 99, newer than this library's (1)" in said


async def test_a_sqlite_path_that_cannot_be_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a_dir.db").mkdir()
    async with Emulator(meetings=5, seed=43, rate_limit=None) as emu:
        said = await _refused(emu, ["--out", f"sqlite:///{tmp_path / 'a_dir.db'}"])
        assert "a_dir.db" in said
        said = await _refused(emu, ["--out", f"sqlite:///{tmp_path}/x.db", "--db-schema", "s"])
        assert "SQLite has no schemas" in said
        said = await _refused(emu, ["--out", f"sqlite:///{tmp_path}/x.db", "--fields", "email"])
        assert "--fields: a database output has fixed tables" in said


class _Admin:
    """A connection as the test database's owner, for setting the scene."""

    def __init__(self) -> None:
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        import asyncpg

        self._conn = await asyncpg.connect(POSTGRES_URL)
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.close()


def _admin() -> _Admin:
    return _Admin()


# --- kill -9, then run again ---------------------------------------------------------

KILLS = 10


def _subprocess_argv(emu: Emulator, database: TestDatabase) -> list[str]:
    return [
        sys.executable,
        "-m",
        "feishu_vc_async",
        "export",
        "--since",
        str(SINCE),
        "--until",
        str(UNTIL),
        "--include-webinars",
        *database.cli_args,
        "--resume",
        "--base-url",
        emu.base_url,
        "--rate-limit",
        "1000/1s",
        # meeting_list slow enough that discovery lasts a few pages' worth of seconds.
        "--meeting-list-rate-limit",
        "3/1s",
        "--concurrency",
        "3",
        "--page-size",
        "20",
        "--progress",
        "none",
    ]


def _polled(database: TestDatabase) -> Callable[[Kill], Awaitable[Callable[[], Awaitable[bool]]]]:
    """``commit``: as soon as the run's next commit shows in the progress table."""

    async def polled(kill: Kill) -> Callable[[], Awaitable[bool]]:
        assert kill.kind == "commit", kill
        before = await database.progress_stamp()

        async def committed() -> bool:
            return await database.progress_stamp() != before

        return committed

    return polled


@pytest.mark.slow
async def test_killed_exports_rerun_to_exactly_the_ground_truth(
    database: TestDatabase, tmp_path: Path, rng: random.Random
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    data = MeetingData(anchor=ANCHOR, webinar_size=200)
    async with Emulator(
        meetings=450,
        seed=44,
        rate_limit=None,
        meeting_list_rate_limit=None,
        latency=0.01,
        data=data,
    ) as emu:
        listed = emu.listed_meetings(SINCE, UNTIL, include_webinar=True)
        assert len(listed) > 200  # several meeting_list pages of 100
        env = {**app_env(emu), "PATH": "/usr/bin"}
        argv = _subprocess_argv(emu, database)
        plan: list[Kill] = []
        codes: list[int] = []
        killed_while_finding = 0
        for n in range(KILLS):
            state = await database.state()
            finding = state is None or not (state.discovery and state.discovery.position.done)
            kinds = ("answer", "commit") + ("listing",) * finding
            kill = draw_kill(rng, kinds, 2 if finding else 12)
            plan.append(kill)
            log = logs / f"kill{n}.log"
            codes.append(await run_until(argv, env, log, emu, kill, polled=_polled(database)))
            state = await database.state()
            if state is not None and state.discovery and not state.discovery.position.done:
                killed_while_finding += 1
        final = await run_until(argv, env, logs / "final.log", emu)
        assert final == 0, (logs / "final.log").read_text()
        truth = {}
        for meeting in listed:
            query = meeting.query()
            rows = [astuple(p) for p in emu.participants(query)]
            if rows:
                truth[f"{query.meeting_no}@{query.meeting_start_time}"] = rows
    context = f"kills {[str(k) for k in plan]} gave {codes}; replay: {replay_hint()}"
    assert codes == [-signal.SIGKILL] * KILLS, context
    assert killed_while_finding >= 1, f"no kill landed during discovery; {context}"
    got = await database.participants()
    assert sum(map(len, truth.values())) > 3000
    assert got == truth, (
        f"meetings missing {len(truth.keys() - got.keys())}, extra "
        f"{len(got.keys() - truth.keys())}, differing "
        f"{sum(got[k] != truth[k] for k in truth.keys() & got.keys())}; {context}"
    )
    meetings = await database.fetch(
        f"SELECT count(*), sum(participant_rows) FROM {database.table('feishu_vc_meetings')}"
    )
    assert meetings[0] == (len(listed), sum(map(len, truth.values())))


async def test_meetings_into_a_database_list_without_taking_an_export_s_counts(
    database: TestDatabase,
) -> None:
    """``feishu-vc meetings --out URL`` upserts the meetings, their participants not
    exported (empty count); listing again after an export keeps the export's counts."""
    async with Emulator(meetings=20, seed=45, rate_limit=None) as emu:
        since_until = ["--since", str(SINCE), "--until", str(UNTIL)]
        listing = ["meetings", *since_until, *database.cli_args, "--base-url", emu.base_url]
        code, out, err = await run_cli(
            [*listing, "--meeting-list-rate-limit", "1000/1s"], app_env(emu)
        )
        assert code == 0, err
        assert f"→ {database.url}" in out
        meetings = database.table("feishu_vc_meetings")
        counts = f"SELECT count(*), count(participant_rows), count(meeting_topic) FROM {meetings}"
        listed = len(emu.listed_meetings(SINCE, UNTIL))
        assert await database.fetch(counts) == [(listed, 0, listed)]
        code, _, err = await run_cli(_export_argv(emu, database.cli_args), app_env(emu))
        assert code == 0, err
        code, _, err = await run_cli(
            [*listing, "--meeting-list-rate-limit", "1000/1s"], app_env(emu)
        )
        assert code == 0, err
        assert await database.fetch(counts) == [(listed, listed, listed)]
        truth = {
            f"{q.meeting_no}@{q.meeting_start_time}": [astuple(p) for p in emu.participants(q)]
            for q in (m.query() for m in emu.listed_meetings(SINCE, UNTIL))
        }
    assert await database.participants() == {k: v for k, v in truth.items() if v}
