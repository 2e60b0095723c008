"""Rows, the file output and the ledger's checkpoint rules, without a network: a resume
truncates a torn tail."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from feishu_vc_async.cli._outputs import parse_fields
from feishu_vc_async.errors import ConfigError
from feishu_vc_async.export import (
    CheckpointError,
    CheckpointMismatchError,
    OutputChangedError,
    OutputExistsError,
    UnfinishedExportError,
    file_output,
)
from feishu_vc_async.export._checkpoint import CheckpointFile
from feishu_vc_async.export._file_output import FileOutput
from feishu_vc_async.export._ledger import Ledger
from feishu_vc_async.export._rows import ALL_COLUMNS, JOINABLE_COLUMNS, PII_FIELDS, RowBuilder
from feishu_vc_async.export._writers import JsonlEncoder
from feishu_vc_async.fanout import PageItem
from feishu_vc_async.meetings import Meeting
from feishu_vc_async.models import MeetingQuery, Participant

Q1 = MeetingQuery(
    meeting_no="123456789", meeting_start_time=1_700_000_000, meeting_end_time=1_700_003_600
)
Q2 = MeetingQuery(
    meeting_no="234567891", meeting_start_time=1_700_000_000, meeting_end_time=1_700_003_600
)


def _person(n: int) -> Participant:
    return Participant(
        participant_name=f"p{n}",
        user_id=f"ou_{n}",
        phone=f"138000000{n:02d}",
        email=f"p{n}@example.com",
        public_ip=f"27.1.2.{n}",
        internal_ip=f"10.0.0.{n}",
        employee_id=f"E{n}",
        audio=True,
        video=n % 2 == 0,
        join_time="2023.11.14 22:13:20 (GMT+08:00)",
        leave_time="2023.11.14 23:00:00 (GMT+08:00)",
        time_in_meeting="00:46:40",
        accept_status=1,
    )


def test_parse_fields() -> None:
    assert parse_fields(None) == ALL_COLUMNS
    assert parse_fields("meeting_no, email") == ("meeting_no", "email")
    with pytest.raises(ConfigError, match="unknown column"):
        parse_fields("meeting_no,mail")
    with pytest.raises(ConfigError, match="twice"):
        parse_fields("email,email")


def test_rows_have_meeting_columns_and_every_field() -> None:
    (row,) = RowBuilder().rows(Q1, [_person(1)])
    assert list(row) == list(ALL_COLUMNS)
    assert row["meeting_no"] == "123456789"
    assert row["meeting_start_time"] == 1_700_000_000
    assert row["email"] == "p1@example.com"
    assert row["department"] is None


def test_redaction_blanks_pii_and_keeps_the_rest() -> None:
    (row,) = RowBuilder(redact_pii=True).rows(Q1, [_person(1)])
    blanked = [f for f in PII_FIELDS if f in ALL_COLUMNS]
    assert blanked == ["phone", "email", "public_ip", "internal_ip", "employee_id"]
    assert all(row[f] is None for f in blanked)
    assert row["user_id"] == "ou_1"
    assert row["participant_name"] == "p1"


def test_meeting_columns_join_onto_each_row_and_are_redacted_too() -> None:
    organizer = Meeting(
        meeting_id=Q1.meeting_no,
        meeting_topic="周会",
        organizer="张三",
        email="boss@example.com",
        mobile="+86 138",
        user_id="ou_boss",
        audio=False,
        number_of_participants="2",
    )
    columns = ("meeting_no", "meeting_topic", "organizer", "organizer_email", "email",
               "meeting_audio", "audio", "organizer_user_id", "user_id")  # fmt: skip
    for redact in (False, True):
        builder = RowBuilder(columns, redact_pii=redact)
        rows = builder.rows(Q1, [_person(1), _person(2)], organizer)
        assert [r["meeting_topic"] for r in rows] == ["周会", "周会"]
        assert rows[0]["organizer_email"] == (None if redact else "boss@example.com")
        assert rows[0]["email"] == (None if redact else "p1@example.com")
        assert (rows[0]["meeting_audio"], rows[0]["audio"]) == (False, True)
        assert (rows[0]["organizer_user_id"], rows[0]["user_id"]) == ("ou_boss", "ou_1")
    # A meeting the builder does not know has its meeting columns empty.
    (unknown,) = RowBuilder(columns).rows(Q2, [_person(3)])
    assert unknown["meeting_topic"] is None
    assert unknown["meeting_no"] == Q2.meeting_no
    with pytest.raises(ConfigError, match="range export"):
        parse_fields("meeting_no,meeting_topic")
    assert parse_fields("meeting_no,meeting_topic", JOINABLE_COLUMNS) == (
        "meeting_no",
        "meeting_topic",
    )


@pytest.mark.parametrize(
    ("columns", "redact"),
    [
        (ALL_COLUMNS, False),
        (ALL_COLUMNS, True),
        (("email",), False),
        (("email",), True),
        (tuple(reversed(ALL_COLUMNS)), False),
        (("meeting_topic", "user_id", "organizer_email", "meeting_no", "phone"), True),
        (("meeting_no", "meeting_start_time", "meeting_end_time", *JOINABLE_COLUMNS[31:],
          *ALL_COLUMNS[3:]), False),
    ],
)  # fmt: skip
def test_jsonl_lines_are_the_row_dicts_encoded(columns: tuple[str, ...], redact: bool) -> None:
    # The sink encodes value tuples; the lines must be what encoding each row's dict
    # gives: every column, in order, null when empty.
    organizer = Meeting(meeting_id=Q1.meeting_no, meeting_topic="周会", email="boss@example.com")
    builder = RowBuilder(columns, redact_pii=redact)
    people = [_person(1), _person(2), Participant()]
    values = builder.values(Q1, people, organizer)
    assert all(len(v) == len(columns) for v in values)
    expected = msgspec.json.Encoder().encode_lines(builder.rows(Q1, people, organizer))
    assert JsonlEncoder(columns).encode(values) == expected
    # ...and the values are the participant's own fields, not merely what rows() says.
    first = msgspec.json.decode(JsonlEncoder(columns).encode(values[:1]))
    for column in set(columns) & set(Participant.__struct_fields__):
        want = None if redact and column in PII_FIELDS else getattr(people[0], column)
        assert first[column] == want, column
    if "meeting_no" in columns:
        assert first["meeting_no"] == Q1.meeting_no


def _sink(
    out: Path, fmt: str = "jsonl", *, columns: tuple[str, ...] = ALL_COLUMNS, csv_raw: bool = False
) -> Ledger:
    """The ledger of an export of Q1 and Q2 to a file, committing after every record."""
    output = file_output(out, fmt, columns=columns, csv_raw=csv_raw)  # type: ignore[arg-type]
    return Ledger(
        output, identity=[Q1.key, Q2.key], page_size=100, meetings=[Q1, Q2], commit_interval=0.0
    )


def _file(ledger: Ledger) -> FileOutput:
    assert isinstance(ledger.output, FileOutput)
    return ledger.output


def _page(query: MeetingQuery, people: list[Participant], next_token: str | None) -> PageItem:
    """A page as the fan-out yields it (``page_token``/``page_index`` do not matter here)."""
    return PageItem(query, people, None, next_token, next_token is None, 0)


async def test_resume_truncates_what_came_after_the_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = _sink(out)
    await sink.open("resume")
    # A meeting's rows are handed over at its last page, all of them.
    await sink.page(_page(Q1, [_person(1)], "t1"))
    assert not out.exists()
    await sink.page(_page(Q1, [_person(2)], None))
    committed = out.stat().st_size
    # A crash after a written meeting: bytes on disk past the checkpoint, no commit.
    sink.commit_interval = 3600.0
    await sink.page(_page(Q2, [_person(9)], None))
    _file(sink)._data.close()  # no checkpoint commit: what a kill -9 leaves
    with out.open("ab") as fh:
        fh.write(b'{"torn": ')
    assert out.stat().st_size > committed

    again = _sink(out)
    resume = await again.open("resume")
    assert out.stat().st_size == committed
    assert resume.completed == {Q1.key}
    assert resume.next_tokens == {}  # a meeting is done or not begun, never in part
    await again.page(_page(Q2, [_person(3)], None))
    await again.finish()
    names = [
        msgspec.json.decode(line)["participant_name"] for line in out.read_bytes().splitlines()
    ]
    assert names == ["p1", "p2", "p3"]
    checkpoint = CheckpointFile(_file(again).paths.checkpoint).load()
    assert checkpoint is not None
    state = checkpoint.state
    assert state.finalized
    assert state.resume.completed == {Q1.key, Q2.key}
    assert state.resume.next_tokens == {}

    # Finished: a resume has nothing to do and leaves the file alone.
    done = _sink(out)
    await done.open("resume")
    assert done.finalized


async def test_unfinished_checkpoint_needs_resume_or_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    sink = _sink(out, "csv")
    await sink.open("new")
    await sink.page(_page(Q1, [_person(1)], None))
    await sink.abort()
    with pytest.raises(UnfinishedExportError, match="unfinished"):
        await _sink(out, "csv").open("new")
    # Other options than the checkpoint's: refused rather than mixing two exports.
    with pytest.raises(CheckpointMismatchError, match="another export"):
        await _sink(out, "csv", columns=("meeting_no",)).open("resume")
    fresh = _sink(out, "csv")
    await fresh.open("overwrite")
    await fresh.finish()
    assert out.read_bytes() == (",".join(ALL_COLUMNS) + "\r\n").encode()


async def test_csv_cells(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    sink = _sink(out, "csv")
    await sink.open("new")
    await sink.page(_page(Q1, [_person(1), _person(2)], None))
    await sink.finish()
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["video"] for r in rows] == ["false", "true"]
    assert rows[0]["department"] == ""
    assert rows[0]["meeting_end_time"] == "1700003600"


async def test_parquet_typed_columns(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    sink = _sink(out, "parquet")
    await sink.open("new")
    await sink.page(_page(Q1, [_person(1)], "x"))
    await sink.page(_page(Q1, [_person(2)], None))
    await sink.page(_page(Q2, [], None))
    await sink.finish()
    assert not _file(sink).paths.journal.exists()
    table = pq.read_table(out)
    assert table.num_rows == 2
    schema = table.schema
    assert str(schema.field("join_time").type) == "timestamp[ms, tz=UTC]"
    assert str(schema.field("meeting_start_time").type) == "timestamp[ms, tz=UTC]"
    assert str(schema.field("time_in_meeting").type) == "duration[s]"
    assert str(schema.field("audio").type) == "bool"
    first = table.to_pylist()[0]
    assert first["join_time"] == datetime(2023, 11, 14, 14, 13, 20, tzinfo=UTC)
    assert first["time_in_meeting"] == timedelta(minutes=46, seconds=40)
    assert first["meeting_start_time"] == datetime.fromtimestamp(1_700_000_000, UTC)
    assert first["department"] is None
    assert first["audio"] is True


async def test_resume_refuses_an_output_changed_or_gone(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = _sink(out)
    await sink.open("new")
    await sink.page(_page(Q1, [_person(1)], None))
    await sink.abort()
    out.unlink()
    with pytest.raises(OutputChangedError, match="gone"):
        await _sink(out).open("resume")

    done = _sink(out)
    await done.open("overwrite")
    await done.page(_page(Q1, [_person(1)], None))
    await done.page(_page(Q2, [_person(2)], None))
    await done.finish()
    with out.open("ab") as fh:
        fh.write(b"{}\n")
    with pytest.raises(OutputChangedError, match="changed after"):
        await _sink(out).open("resume")


async def test_csv_cells_are_neutralized_unless_raw_and_a_resume_keeps_the_choice(
    tmp_path: Path,
) -> None:
    formula = Participant(participant_name='=HYPERLINK("http://x")', accept_status=-1)
    for raw, expected in ((False, "'=HYPERLINK"), (True, "=HYPERLINK")):
        out = tmp_path / f"raw-{raw}.csv"
        sink = _sink(out, "csv", csv_raw=raw)
        await sink.open("new")
        await sink.page(_page(Q1, [formula], None))
        await sink.abort()
        (row,) = csv.DictReader(io.StringIO(out.read_text()))
        assert row["participant_name"].startswith(expected)
        assert row["accept_status"] == "-1"  # a number the tool writes is not a formula
        with pytest.raises(CheckpointMismatchError, match="another export"):
            await _sink(out, "csv", csv_raw=not raw).open("resume")


async def test_resume_refuses_an_output_whose_committed_tail_changed(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = _sink(out)
    await sink.open("new")
    await sink.page(_page(Q1, [_person(1), _person(2)], None))
    await sink.abort()
    committed = out.read_bytes()
    # Same length, one byte changed inside what the checkpoint counts: another writer.
    damaged = committed.replace(b'"p2"', b'"pX"')
    assert len(damaged) == len(committed)
    out.write_bytes(damaged + b'{"torn')  # a torn tail after it is fine, this is not
    with pytest.raises(OutputChangedError, match="does not match its checkpoint"):
        await _sink(out).open("resume")
    assert out.read_bytes() == damaged + b'{"torn'  # left as it was, not truncated
    out.write_bytes(committed + b'{"torn')
    resumed = _sink(out)
    assert (await resumed.open("resume")).completed == {Q1.key}
    await resumed.abort()
    assert out.read_bytes() == committed

    # A finished output edited afterwards is refused too, even at the same length.
    done = _sink(out)
    await done.open("resume")
    await done.page(_page(Q2, [_person(3)], None))
    await done.finish()
    final = out.read_bytes()
    out.write_bytes(final.replace(b'"p3"', b'"pY"'))
    with pytest.raises(OutputChangedError, match="changed after the export completed"):
        await _sink(out).open("resume")


async def test_a_fresh_export_touches_nothing_before_its_first_page(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = _sink(out)
    await done.open("new")
    await done.page(_page(Q1, [_person(1)], None))
    await done.page(_page(Q2, [_person(2)], None))
    await done.finish()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # --overwrite, then a stop before anything arrived (refused credentials, say).
    fresh = _sink(out)
    await fresh.open("overwrite")
    assert not fresh.started
    await fresh.abort()
    assert await fresh.record_failures([]) == []
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # The first page starts it.
    await fresh.page(_page(Q1, [_person(7)], None))
    assert fresh.started
    await fresh.abort()
    assert b"p7" in out.read_bytes()
    assert b"p2" not in out.read_bytes()


async def test_an_existing_out_that_is_not_this_exports_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    out.write_text("someone else's file\n")
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    for path in (out, link):
        for resume in (False, True):
            with pytest.raises(OutputExistsError, match="exists and no saved progress"):
                await _sink(path, "csv").open("resume" if resume else "new")
    assert out.read_text() == "someone else's file\n"
    # A finished export of other meetings or options is another export's output too.
    other = _sink(tmp_path / "other.csv", "csv", columns=("meeting_no",))
    await other.open("new")
    await other.page(_page(Q1, [], None))
    await other.page(_page(Q2, [], None))
    await other.finish()
    with pytest.raises(OutputExistsError, match="another finished export"):
        await _sink(tmp_path / "other.csv", "csv").open("new")
    # The same export's finished output is its own: run again, it is made anew.
    again = _sink(tmp_path / "other.csv", "csv", columns=("meeting_no",))
    await again.open("new")
    await again.abort()
    fresh = _sink(out, "csv")
    await fresh.open("overwrite")
    await fresh.page(_page(Q1, [], None))
    await fresh.abort()
    assert out.read_text().startswith("meeting_no,")


async def test_a_damaged_checkpoint_or_an_output_turned_directory_is_named(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    sink = _sink(out)
    await sink.open("new")
    await sink.page(_page(Q1, [_person(1)], None))
    await sink.abort()
    checkpoint = _file(sink).paths.checkpoint
    saved = checkpoint.read_bytes()
    # A length below zero is a damaged checkpoint, not a read of negative length.
    checkpoint.write_bytes(saved.replace(b'"data_bytes":', b'"data_bytes":-', 1))
    with pytest.raises(CheckpointError, match=r"is damaged \(Expected `int` >= 0"):
        await _sink(out).open("resume")
    # The output replaced by a directory is said to be one, not "4096 bytes, shorter".
    checkpoint.write_bytes(saved)
    out.unlink()
    out.mkdir()
    with pytest.raises(OutputChangedError, match="is a directory but the checkpoint counts 1 rows"):
        await _sink(out).open("resume")
