"""Database outputs (PostgreSQL and SQLite, both real) through ``export(client, job)``:
every participant exactly once, a meeting written again replaces its rows, the lock,
a connection lost mid-run, redaction and tenants."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from msgspec.structs import astuple

from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export import (
    CheckpointMismatchError,
    DatabaseOutputError,
    ExportJob,
    ExportState,
    OutputInUseError,
    export,
)
from feishu_vc_async.export._db_output import BATCH_ROWS
from feishu_vc_async.models import MeetingQuery, Participant
from tests._databases import TestDatabase, postgres_database
from tests._fanout import make_client

pytestmark = pytest.mark.anyio


def _truth(emu: Emulator, queries: list[MeetingQuery]) -> dict[str, list[tuple[Any, ...]]]:
    truth = {f"{q.meeting_no}@{q.meeting_start_time}": emu.participants(q) for q in queries}
    return {key: [astuple(p) for p in rows] for key, rows in truth.items() if rows}


async def test_the_typed_time_columns_hold_the_instants_the_platform_sent(
    database: TestDatabase,
) -> None:
    """joined_at/left_at are the instants of join_time/leave_time (whatever offset each
    was sent in), seconds_in_meeting is time_in_meeting, started_at/ended_at are the
    meeting's unix seconds: PostgreSQL's are sent as integers of our own codec, SQLite's
    as UTC text, so both are read back here as unix seconds and compared."""
    from datetime import UTC, datetime

    from feishu_vc_async._timeparse import parse_duration, parse_feishu_time

    def unix(value: str | None) -> int | None:
        shown = parse_feishu_time(value)
        return None if shown is None else int(shown.timestamp())

    if database.kind == "postgres":
        seconds = "extract(epoch FROM {})::bigint".format
    else:
        seconds = "CAST(strftime('%s', {}) AS INTEGER)".format
    before = int(datetime.now(UTC).timestamp())
    async with Emulator(meetings=25, seed=37, rate_limit=None) as emu, make_client(emu) as client:
        assert (await export(client, ExportJob(emu.meetings, database.output()))).complete
        after = int(datetime.now(UTC).timestamp())
        offsets = set()
        want = set()
        for q in emu.meetings:
            for row_no, p in enumerate(emu.participants(q)):
                spent = parse_duration(p.time_in_meeting)
                want.add(
                    (
                        q.meeting_no,
                        row_no,
                        unix(p.join_time),
                        unix(p.leave_time),
                        None if spent is None else int(spent.total_seconds()),
                    )
                )
                offsets.add((p.join_time or "")[-7:-1])
    assert len(offsets) > 1  # times sent in more than one offset
    got = await database.fetch(
        f"SELECT meeting_no, row_no, {seconds('joined_at')}, {seconds('left_at')}, "
        f"seconds_in_meeting FROM {database.table('feishu_vc_participants')}"
    )
    assert set(got) == want
    assert len(got) == len(want)
    meetings = await database.fetch(
        f"SELECT meeting_no, meeting_start_time, {seconds('started_at')}, "
        f"meeting_end_time, {seconds('ended_at')}, {seconds('exported_at')} "
        f"FROM {database.table('feishu_vc_meetings')}"
    )
    assert {(m[0], m[1], m[3]) for m in meetings} == {
        (q.meeting_no, q.meeting_start_time, q.meeting_end_time) for q in emu.meetings
    }
    for _, start, started, end, ended, exported in meetings:
        assert (started, ended) == (start, end)
        assert before <= exported <= after + 1


async def test_the_integer_timestamp_codec_reads_back_what_it_wrote(postgres_url: str) -> None:
    """The store's connection writes and reads timestamps in its own form; what it reads
    back is the aware datetime it was given, and a datetime given raw is refused."""
    import asyncpg

    from feishu_vc_async._timeparse import parse_feishu_time
    from feishu_vc_async.export._pg_instants import integer_timestamps, postgres_instant

    shown = ["2025.12.02 15:30:56 (GMT+05:30)", "1999.12.31 23:59:59 (GMT-08:00)"]
    conn = await asyncpg.connect(postgres_url)
    try:
        await integer_timestamps(conn)
        for text in shown:
            back = await conn.fetchval("SELECT $1::timestamptz", postgres_instant(text))
            assert back == parse_feishu_time(text)
            assert back.utcoffset() is not None
        with pytest.raises(asyncpg.DataError, match="not iterable"):
            await conn.fetchval("SELECT $1::timestamptz", parse_feishu_time(shown[0]))
    finally:
        await conn.close()


async def test_an_export_holds_every_participant_once_and_a_rerun_replaces(
    database: TestDatabase,
) -> None:
    data = MeetingData(webinars=1, webinar_size=450)
    async with Emulator(meetings=30, seed=31, rate_limit=None, data=data) as emu:
        truth = _truth(emu, emu.meetings)
        async with make_client(emu) as client:
            run = await export(client, ExportJob(emu.meetings, database.output(), page_size=50))
            assert run.complete
            assert await database.participants() == truth
            # A rerun of the finished export asks nothing; a new export of some of the
            # same meetings replaces their rows, never adds to them.
            emu.reset_log()
            again = await export(client, ExportJob(emu.meetings, database.output(), page_size=50))
            assert again.already_complete
            assert emu.requests == []
            some = emu.meetings[:10]
            other = await export(client, ExportJob(some, database.output(), page_size=20))
            assert other.complete
            assert other.ledger.rows_total == sum(len(emu.participants(q)) for q in some)
    assert await database.participants() == truth
    meetings = await database.fetch(
        f"SELECT meeting_no, meeting_start_time, participant_rows "
        f"FROM {database.table('feishu_vc_meetings')}"
    )
    assert sorted(meetings) == sorted(
        (q.meeting_no, q.meeting_start_time, len(emu.participants(q))) for q in emu.meetings
    )


async def test_an_unfinished_export_of_other_meetings_is_not_dropped_unless_told(
    database: TestDatabase,
) -> None:
    data = MeetingData(webinars=1, webinar_size=300)
    async with (
        Emulator(meetings=12, seed=32, rate_limit=None, latency=0.02, data=data) as emu,
        make_client(emu) as client,
    ):
        first = [*emu.webinars, *emu.meetings[:6]]
        job = ExportJob(first, database.output(), page_size=20, concurrency=1, commit_interval=0)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(export, client, job)
            while not await database.progress_stamp():  # its first commit
                await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
        (saved,) = await database.progress_stamp()
        with pytest.raises(CheckpointMismatchError, match="another export"):
            await export(client, ExportJob(emu.meetings[6:], database.output()))
        run = await export(client, ExportJob(emu.meetings[6:], database.output(), mode="overwrite"))
        assert run.complete
        truth = _truth(emu, emu.meetings[6:])
        got = await database.participants()
        assert {k: got[k] for k in truth} == truth
    assert saved[3] > 0  # the first export's state was there, unfinished, when refused


async def test_a_second_run_is_refused_naming_the_first(database: TestDatabase) -> None:
    async with Emulator(meetings=4, seed=33, rate_limit=None) as emu, make_client(emu) as client:
        holder = database.output()
        async with holder.lock():
            with pytest.raises(OutputInUseError, match="is being written by") as refused:
                await export(client, ExportJob(emu.meetings, database.output(lock_wait=0.0)))
        assert emu.requests == []
    assert database.url.split("@")[-1].split("/")[0] in str(refused.value) or (
        database.kind == "sqlite"
    )


async def test_tenants_share_the_tables_without_touching_each_other(
    database: TestDatabase,
) -> None:
    async with Emulator(meetings=8, seed=34, rate_limit=None) as emu, make_client(emu) as client:
        for tenant in ("tenant_a", "tenant_b"):
            run = await export(client, ExportJob(emu.meetings, database.output(tenant_key=tenant)))
            assert run.complete
        truth = _truth(emu, emu.meetings)
    assert await database.participants("tenant_a") == truth
    assert await database.participants("tenant_b") == truth


async def test_redaction_blanks_contact_data_in_the_tables(database: TestDatabase) -> None:
    async with Emulator(meetings=6, seed=35, rate_limit=None) as emu, make_client(emu) as client:
        run = await export(client, ExportJob(emu.meetings, database.output(redact_pii=True)))
        assert run.complete
    table = database.table("feishu_vc_participants")
    rows = await database.fetch(
        f"SELECT count(*), count(phone), count(email), count(public_ip), count(internal_ip), "
        f"count(employee_id), count(user_id) FROM {table}"
    )
    total, *pii, user_ids = rows[0]
    assert total > 0
    assert pii == [0] * 5
    assert user_ids > 0  # the ids stay: they join the rows to the rest of a tenant's data


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_connection_terminated_mid_run_stops_it_and_a_rerun_is_exact(
    database: TestDatabase,
) -> None:
    data = MeetingData(webinars=1, webinar_size=600)
    async with Emulator(meetings=40, seed=36, rate_limit=None, data=data) as emu:
        truth = _truth(emu, emu.meetings)
        answered = 0
        half = anyio.Event()

        def count(_record: object) -> None:
            nonlocal answered
            answered += 1
            if answered == 20:
                half.set()

        emu.on_record(count)
        async with make_client(emu) as client:
            job = ExportJob(emu.meetings, database.output(), page_size=20, commit_interval=0)

            async def terminate() -> None:
                await half.wait()
                # This process's connections only: other test runs share the server.
                await database.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE application_name LIKE 'feishu-vc pid {os.getpid()} %'"
                )

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(terminate)
                with pytest.raises(DatabaseOutputError, match="closed the connection"):
                    await export(client, job)
            emu.on_record(None)
            run = await export(client, ExportJob(emu.meetings, database.output(), page_size=20))
            assert run.complete
    assert await database.participants() == truth


def _people(n: int) -> list[Participant]:
    return [Participant(participant_name=f"p{i}", user_id=f"ou_{i}") for i in range(n)]


def _meeting(number: str) -> MeetingQuery:
    return MeetingQuery(
        meeting_no=number, meeting_start_time=1_780_000_000, meeting_end_time=1_780_003_600
    )


async def test_a_meeting_cut_short_while_written_is_never_committed(
    database: TestDatabase,
) -> None:
    """A failure inside a meeting's write (its spooled pages unreadable, say) drops the
    open transaction at the next commit: the tables and the saved progress stay as the
    last commit left them."""
    output = database.output()
    whole, cut = _meeting("123456789"), _meeting("987654321")
    async with output.lock():
        assert await output.load() is None
        first = ExportState(fingerprint="first", rows=3)
        await output.start(first, fresh=True)
        await output.write(whole, [_people(3)], None)
        await output.commit(first)

        def pages() -> Iterator[list[Participant]]:
            yield _people(BATCH_ROWS + 10)  # a batch is sent before the failure
            raise OSError("a spool file could not be read")

        with pytest.raises(OSError, match="spool"):
            await output.write(cut, pages(), None)
        await output.commit(ExportState(fingerprint="second", rows=99))
        await output.close()
    rows = await database.participants()
    assert list(rows) == [f"{whole.meeting_no}@{whole.meeting_start_time}"]
    saved = await database.state()
    assert saved is not None
    assert saved.fingerprint == "first"


async def test_a_cancelled_write_finishes_its_meeting_before_the_cancel_lands(
    database: TestDatabase,
) -> None:
    """Ctrl-C or SIGTERM while a meeting is written (over several batches): the meeting
    goes in whole, then the cancellation is delivered."""
    output = database.output()
    big = _meeting("555555555")
    size = 2 * BATCH_ROWS + 7
    async with output.lock():
        await output.load()
        state = ExportState(fingerprint="big")
        await output.start(state, fresh=True)
        wrote: list[int] = []
        with anyio.CancelScope() as scope:

            def pages() -> Iterator[list[Participant]]:
                yield _people(BATCH_ROWS + 1)  # a batch is sent
                scope.cancel()  # Ctrl-C arrives mid-meeting
                yield _people(size - BATCH_ROWS - 1)

            wrote.append(await output.write(big, pages(), None))
            await anyio.sleep(0)  # where the cancellation lands: after the meeting
        assert wrote == [size]
        assert scope.cancelled_caught
        await output.commit(state)
    rows = await database.participants()
    assert [len(v) for v in rows.values()] == [size]


async def test_two_writers_of_one_meeting_the_second_waits_and_replaces_the_first(
    postgres_url: str,
) -> None:
    """Two runs given the same meeting (two workers each handed it): the second's write
    waits for the first's claim of the meeting (its row in the meetings table, locked to
    the commit), then replaces its rows. Without the claim it would insert beside the
    first's uncommitted rows and fail on the key."""
    from feishu_vc_async.export._db_tables import PARTICIPANTS
    from feishu_vc_async.export._postgres import PostgresStore

    width = len(PARTICIPANTS.names)

    def rows(n: int, tag: str) -> list[tuple[Any, ...]]:
        fields = [None] * (width - 4)
        fields[0] = tag
        return [("t1", "100", 1700000000, i, *fields) for i in range(n)]

    async def waiting(db: TestDatabase) -> bool:
        found = await db.fetch(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(found[0][0])

    async with postgres_database() as db:
        first, second = (PostgresStore(db.url, where="pg", schema=db.schema) for _ in range(2))
        key = [("t1", "100", 1700000000)]
        async with first.lock("t1", "run-a"), second.lock("t1", "run-b"):
            await first.begin()
            await first.replace(key, rows(3, "first"))
            await first.load("t1", "run-a")  # its writes done: it holds the meeting
            await second.begin()
            await second.replace(key, rows(2, "second"))
            with anyio.fail_after(30):
                while not await waiting(db):  # observed: the second waits for the first
                    await anyio.sleep(0.01)
            await first.commit([], ("t1", "run-a", b"a", None))
            await second.commit([], ("t1", "run-b", b"b", None))
        got = await db.fetch(
            f"SELECT row_no, {PARTICIPANTS.names[4]} FROM {db.table('feishu_vc_participants')} "
            "ORDER BY row_no"
        )
        assert got == [(0, "second"), (1, "second")]


async def test_a_transaction_of_fifty_thousand_meetings_commits(postgres_url: str) -> None:
    """Meetings between two commits are unbounded (small meetings at full speed): a
    lock a meeting in the server's shared lock table (64 per connection by default)
    failed such a transaction with "out of shared memory"; the claim is a row lock."""
    from feishu_vc_async.export._postgres import PostgresStore

    keys = [("t1", f"{n:09d}", 1700000000 + n) for n in range(50_000)]
    async with postgres_database() as db:
        store = PostgresStore(db.url, where="pg", schema=db.schema)
        async with store.lock("t1", "big"):
            await store.begin()
            await store.replace(keys, [])
            await store.commit([], ("t1", "big", b"done", None))
            assert await store.load("t1", "big") == (b"done", None)


async def test_a_note_dropped_is_gone_and_the_others_stay(database: TestDatabase) -> None:
    """``drop_note``: sync --broker forgets each window's discovery note once read, so a
    sync leaves no row per cycle; another tenant's note of the same name stays."""
    mine, other = database.output(name="sync"), database.output(tenant_key="t2", name="sync")
    async with other.lock():  # one at a time: SQLite's lock is the whole file's
        await other.save_note("window:1-2", b"theirs")
    async with mine.lock():
        await mine.save_note("window:1-2", b"found")
        await mine.save_note("sync.state", b"state")
        await mine.drop_note("window:1-2")
        await mine.drop_note("window:never-saved")  # nothing to drop: no error
        assert await mine.load_note("window:1-2") is None
        assert await mine.load_note("sync.state") == b"state"
    async with other.lock():
        assert await other.load_note("window:1-2") == b"theirs"
