"""Exports by date range, and `feishu-vc meetings`, through the CLI against the emulator.

The emulator's meetings end before a fixed ``ANCHOR`` (a past day), so a range given in
unix seconds finds the same meetings on every run; the ground truth is what the
emulator lists for the range (``listed_meetings``) and what participant_list returns
for each of those meetings.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from feishu_vc_async import Meeting, RateLimit
from feishu_vc_async._constants import MEETING_LIST_PATH, PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export._checkpoint import CheckpointFile
from tests._cli import (
    app_env,
    by_meeting,
    export_argv,
    ground_truth,
    meeting_key,
    read_jsonl,
    run_cli,
)
from tests._gateway import client_limit

pytestmark = pytest.mark.anyio

DAY = 86_400
ANCHOR = 1_780_000_000 // DAY * DAY  # 2026-05-28T00:00:00Z
SINCE, UNTIL = ANCHOR - 40 * DAY, ANCHOR


def _emulator(**overrides: Any) -> Emulator:
    settings: dict[str, Any] = {
        "meetings": 90,
        "seed": 13,
        "rate_limit": None,
        "meeting_list_rate_limit": None,
        "data": MeetingData(anchor=ANCHOR, webinar_size=260),
    }
    settings.update(overrides)
    return Emulator(**settings)


def _range_argv(emu: Emulator, out: Path, *extra: str) -> list[str]:
    return [
        "export",
        "--since",
        str(SINCE),
        "--until",
        str(UNTIL),
        "--out",
        str(out),
        "--base-url",
        emu.base_url,
        "--rate-limit",
        "1000/1s",
        "--meeting-list-rate-limit",
        "1000/1s",
        "--progress",
        "none",
        *extra,
    ]


def _meetings_argv(emu: Emulator, out: Path, *extra: str) -> list[str]:
    since_until = ["--since", str(SINCE), "--until", str(UNTIL)]
    return ["meetings", *since_until, "--out", str(out), "--base-url", emu.base_url, *extra]


def _listed(emu: Emulator, **flags: Any) -> list[Meeting]:
    return emu.listed_meetings(SINCE, UNTIL, **flags)


def _truth(emu: Emulator, meetings: list[Meeting]) -> dict[str, list[dict[str, Any]]]:
    return ground_truth(emu, [m.query() for m in meetings])


async def test_a_range_export_holds_every_participant_of_every_meeting_once(
    tmp_path: Path,
) -> None:
    async with _emulator() as emu:
        out = tmp_path / "range.jsonl"
        code, stdout, stderr = await run_cli(
            _range_argv(emu, out, "--include-webinars"), app_env(emu)
        )
        assert code == 0, stderr
        listed = _listed(emu, include_webinar=True)
        truth = _truth(emu, listed)
        fetches = [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
    assert {k: v for k, v in truth.items() if v} == by_meeting(read_jsonl(out))
    # Among the meetings found (one meeting_list page here), the largest starts first.
    # By arrival: the log is in answer order, and the first requests of a fresh emulator
    # are all answered from worker threads (the directory of people is made first), in
    # whatever order those threads finish.
    largest = max(listed, key=lambda m: m.participant_count or 0)
    first = min(fetches, key=lambda r: r.time).params
    assert (first["meeting_no"], int(first["meeting_start_time"])) == (
        largest.meeting_id,
        largest.start_seconds,
    )
    assert f"Exported {len(listed)} of {len(listed)} meetings" in stdout
    assert f"({SINCE}) .. " in stdout  # the summary says which instants were used
    assert f"{len(listed)} meetings found" in stdout
    # Recurring numbers are separate meetings: some number held twice, both exported.
    numbers = [m.meeting_id for m in listed]
    recurring = {n for n in numbers if numbers.count(n) > 1}
    assert recurring
    exported = {key.split("@")[0] for key in by_meeting(read_jsonl(out))}
    assert recurring <= exported
    assert len(by_meeting(read_jsonl(out))) == len([k for k, v in truth.items() if v])


async def test_meeting_columns_join_onto_each_row(tmp_path: Path) -> None:
    async with _emulator(meetings=30) as emu:
        out = tmp_path / "joined.csv"
        fields = "meeting_no,meeting_start_time,meeting_topic,organizer,number_of_participants,"
        fields += "participant_name,organizer_user_id,user_id"
        code, _, stderr = await run_cli(_range_argv(emu, out, "--fields", fields), app_env(emu))
        assert code == 0, stderr
        by_key = {m.key: m for m in _listed(emu)}
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    assert list(rows[0]) == fields.split(",")
    for row in rows:
        meeting = by_key[meeting_key(row["meeting_no"], row["meeting_start_time"])]
        assert row["meeting_topic"] == meeting.meeting_topic
        assert row["organizer"] == meeting.organizer
        assert row["number_of_participants"] == meeting.number_of_participants
        assert row["organizer_user_id"] == meeting.user_id


async def test_meetings_command_writes_an_export_input(tmp_path: Path) -> None:
    async with _emulator(meetings=50) as emu:
        env = app_env(emu)
        listed = _listed(emu, include_external=True)
        for fmt in ("csv", "jsonl", "parquet"):
            path = tmp_path / f"meetings.{fmt}"
            code, stdout, stderr = await run_cli(
                _meetings_argv(emu, path, "--include-external"), env
            )
            assert code == 0, stderr
            assert f"Listed {len(listed)} meetings" in stdout
            assert path.stat().st_mode & 0o777 == 0o600
        with (tmp_path / "meetings.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert [meeting_key(r["meeting_no"], r["meeting_start_time"]) for r in rows] == [
            m.key for m in listed
        ]
        assert [r["meeting_topic"] for r in rows] == [m.meeting_topic for m in listed]
        jsonl = msgspec.json.decode(
            b"[" + b",".join((tmp_path / "meetings.jsonl").read_bytes().splitlines()) + b"]"
        )
        assert [r["meeting_end_time"] for r in jsonl] == [m.end_seconds for m in listed]
        # The file is what `export --meetings` takes, without a word about its columns.
        out = tmp_path / "participants.jsonl"
        code, _, stderr = await run_cli(
            export_argv(emu, tmp_path / "meetings.csv", out, "--progress", "none"), env
        )
        assert code == 0, stderr
        assert "ignoring column" not in stderr
        truth = _truth(emu, listed)
        # An existing output is not replaced without --overwrite.
        code, _, stderr = await run_cli(_meetings_argv(emu, tmp_path / "meetings.csv"), env)
        assert code == 2
        assert "--overwrite" in stderr
    assert {k: v for k, v in truth.items() if v} == by_meeting(read_jsonl(out))


@pytest.mark.parametrize("name", ["meetings.parquet", "meetings.pq"])
async def test_a_parquet_meetings_file_is_an_export_input(tmp_path: Path, name: str) -> None:
    """What `meetings` suggests, `export --meetings m.parquet`, exports every participant
    of every meeting listed, exactly; its bad rows are reported by row before any request."""
    async with _emulator(meetings=50) as emu:
        env = app_env(emu)
        listed = _listed(emu, include_webinar=True)
        path = tmp_path / name
        code, stdout, stderr = await run_cli(
            _meetings_argv(emu, path, "--include-webinars", "--format", "parquet"), env
        )
        assert code == 0, stderr
        assert f"feishu-vc export --meetings {path} --out FILE" in stdout
        out = tmp_path / "participants.jsonl"
        code, stdout, stderr = await run_cli(export_argv(emu, path, out, "-v"), env)
        assert code == 0, stderr
        assert "ignoring column" not in stderr  # the meeting columns are read past
        assert f"Exported {len(listed)} of {len(listed)} meetings" in stdout
        truth = _truth(emu, listed)

        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        numbers = table.column("meeting_no").to_pylist()
        numbers[1] = "12345"
        broken = table.set_column(0, "meeting_no", pa.array(numbers, pa.string()))
        pq.write_table(broken, path)
        asked = len(emu.requests)
        code, _, stderr = await run_cli(export_argv(emu, path, out, "--overwrite"), env)
        assert code == 2
        assert f"  {path}: row 2: meeting_no='12345': must be exactly 9 digits\n" in stderr
        assert len(emu.requests) == asked
    assert {k: v for k, v in truth.items() if v} == by_meeting(read_jsonl(out))


async def test_an_ongoing_meeting_is_exported_up_to_now(tmp_path: Path) -> None:
    async with _emulator(meetings=40, data=MeetingData(anchor=None, webinar_size=260)) as emu:
        now = int(time.time())
        out = tmp_path / "ongoing.jsonl"
        argv = _range_argv(emu, out, "--status", "ongoing")
        argv[argv.index("--since") + 1] = str(now - DAY)
        argv[argv.index("--until") + 1] = str(now)
        code, stdout, stderr = await run_cli(argv, app_env(emu))
        assert code == 0, stderr
        assert emu.ongoing
        expected = sum(len(emu.participants(q)) for q in emu.ongoing)
    rows = read_jsonl(out)
    assert len(rows) == expected > 0
    assert any(row["leave_time"] is None for row in rows)  # still in the meeting
    assert f"Exported {len(emu.ongoing)} of {len(emu.ongoing)} meetings" in stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--since": str(UNTIL), "--until": str(SINCE)}, "--until"),
        ({"--since": "2026-13-45"}, "--since '2026-13-45': not a calendar date"),
        ({"--until": "next tuesday"}, "--until 'next tuesday': must be a date"),
        ({"--since": "2099-01-01", "--until": "2099-02-01"}, "cannot be later than now"),
        ({"--meeting-no": "123456789", "--user-id": "ou_1"}, "--meeting-no/--user-id"),
        ({"--meeting-no": "12345"}, "--meeting-no '12345': must be exactly 9 digits"),
        ({"--tz": "Mars/Olympus"}, "--tz: unknown time zone 'Mars/Olympus'"),
        ({"--meetings": "m.csv"}, "either --meetings or --since/--until"),
    ],
)
async def test_bad_input_is_refused_before_any_request(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    async with _emulator(meetings=5) as emu:
        argv = _range_argv(emu, tmp_path / "o.jsonl")
        for option, value in change.items():
            if option in argv:
                argv[argv.index(option) + 1] = value
            else:
                argv += [option, value]
        code, stdout, stderr = await run_cli(argv, app_env(emu))
        assert emu.requests == []
    assert code == 2
    assert message in stderr
    assert stdout == ""
    assert not (tmp_path / "o.jsonl").exists()


async def test_meeting_columns_need_a_range(tmp_path: Path) -> None:
    meetings = tmp_path / "m.csv"
    meetings.write_text("meeting_no,meeting_start_time,meeting_end_time\n123456789,1,2\n")
    code, _, stderr = await run_cli(
        export_argv(
            "http://127.0.0.1:9",
            meetings,
            tmp_path / "o.jsonl",
            "--fields",
            "meeting_no,meeting_topic",
        ),
        {"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s"},
    )
    assert code == 2
    assert "meeting_topic: meeting columns need a range export" in stderr


async def test_both_budgets_paced_at_once_and_a_finished_run_asks_nothing(
    tmp_path: Path,
) -> None:
    """Discovery and fetching run at once, each at its own (scaled) limit: neither
    gateway ever refuses and neither API's window ever holds more than its limit; the
    same command with --resume afterwards sends no request and says so. (The client is
    told a little less than the gateway allows: ``tests/_gateway.py``.)"""
    fetch, listing = RateLimit(30, 1.0), RateLimit(5, 1.0)
    async with _emulator(meetings=70, rate_limit=fetch, meeting_list_rate_limit=listing) as emu:
        out = tmp_path / "paced.jsonl"
        argv = _range_argv(emu, out)
        argv[argv.index("--rate-limit") + 1] = str(client_limit(fetch))
        argv[argv.index("--meeting-list-rate-limit") + 1] = str(client_limit(listing))
        code, stdout, stderr = await run_cli(argv, app_env(emu))
        assert code == 0, stderr
        assert not [r for r in emu.requests if r.status == 429]
        assert emu.max_in_window(1.0, PARTICIPANT_LIST_PATH) <= fetch.requests
        assert emu.max_in_window(1.0, MEETING_LIST_PATH) <= listing.requests
        truth = _truth(emu, _listed(emu))
        sent = len(emu.requests)
        code, stdout, stderr = await run_cli([*argv, "--resume"], app_env(emu))
        assert code == 0, stderr
        assert len(emu.requests) == sent  # nothing asked again
        assert "Nothing to do" in stdout
    assert {k: v for k, v in truth.items() if v} == by_meeting(read_jsonl(out))
    checkpoint = CheckpointFile(out.with_name(out.name + ".checkpoint.json")).load()
    assert checkpoint is not None
    state = checkpoint.state
    assert state.finalized
    assert state.discovery is not None
    assert state.discovery.position.done
