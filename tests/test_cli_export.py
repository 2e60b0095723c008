"""`feishu-vc export` end to end against the emulator over real sockets.

The CLI runs in a worker thread (``tests/_cli.py``) while the emulator serves from the
test's loop; the secret test runs it as a subprocess.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from feishu_vc_async._timeparse import parse_duration, parse_feishu_time
from feishu_vc_async.cli import build_parser
from feishu_vc_async.cli.export import command_from_args
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export._input_writer import write_meetings_csv
from feishu_vc_async.export._rows import ALL_COLUMNS, PII_FIELDS
from feishu_vc_async.models import PARTICIPANT_FIELDS, MeetingQuery
from tests._cli import (
    app_env,
    by_meeting,
    export_argv,
    ground_truth,
    read_jsonl,
    run_cli,
)

# Marked here too (conftest marks async tests only after collection): parametrized async
# tests need the marker while they are collected.
pytestmark = pytest.mark.anyio


def _csv_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # neutralised against formula injection (phones are "+86-...")
    return str(value)


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    typed = dict(row)
    for name in ("meeting_start_time", "meeting_end_time"):
        typed[name] = datetime.fromtimestamp(row[name], UTC)
    for name in ("join_time", "leave_time"):
        typed[name] = parse_feishu_time(row[name])
    typed["time_in_meeting"] = parse_duration(row["time_in_meeting"])
    return typed


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
async def test_export_200_meetings_matches_ground_truth(tmp_path: Path, fmt: str) -> None:
    async with Emulator(meetings=200, seed=11, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        out = tmp_path / f"participants.{fmt}"
        code, stdout, stderr = await run_cli(export_argv(emu, meetings, out), app_env(emu))
        assert code == 0, stderr
        truth = ground_truth(emu, emu.meetings)
    assert "Exported 200 of 200 meetings" in stdout
    expected_rows = sum(len(rows) for rows in truth.values())
    assert f"{expected_rows} participants" in stdout
    if fmt == "jsonl":
        got = by_meeting(read_jsonl(out))
        want = truth
    elif fmt == "csv":
        with out.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            assert tuple(reader.fieldnames or ()) == ALL_COLUMNS
            got = by_meeting(list(reader))
        phones = [r["phone"] for rows in got.values() for r in rows if r["phone"]]
        assert phones
        assert all(p.startswith("'+86-") for p in phones)
        want = {
            k: [{c: _csv_text(v) for c, v in r.items()} for r in rows] for k, rows in truth.items()
        }
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert table.column_names == list(ALL_COLUMNS)
        got = by_meeting(table.to_pylist())
        want = {k: [_typed(r) for r in rows] for k, rows in truth.items()}
        assert not out.with_name(out.name + ".journal.jsonl").exists()
    # Every meeting present (an empty one has no rows), each meeting's rows in page order.
    assert {k: v for k, v in want.items() if v} == got


async def test_failing_meetings_are_listed_and_the_rest_exported(tmp_path: Path) -> None:
    async with Emulator(meetings=30, seed=5, rate_limit=None) as emu:
        denied = emu.meetings[3]
        emu.deny_meeting(denied.meeting_no)
        unknown = MeetingQuery(
            meeting_no="999999999",
            meeting_start_time=denied.meeting_start_time,
            meeting_end_time=denied.meeting_end_time,
        )
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, [*emu.meetings, unknown])
        out = tmp_path / "out.jsonl"
        code, stdout, stderr = await run_cli(export_argv(emu, meetings, out), app_env(emu))
        assert code == 1, stderr
        truth = ground_truth(emu, [q for q in emu.meetings if q != denied])

        # A resume retries only the failed ones, and adds nothing twice.
        before = out.read_bytes()
        code2, _, stderr2 = await run_cli(export_argv(emu, meetings, out, "--resume"), app_env(emu))
        assert code2 == 1, stderr2
        assert out.read_bytes() == before
        log_ids = {r.log_id for r in emu.requests if r.code in (121005, 126009)}
    assert "Exported 29 of 31 meetings (2 failed)" in stdout
    assert re.search(rf"{denied.meeting_no}\s+code=121005\s+.*log_id=\S+", stdout)
    assert re.search(r"999999999\s+code=126009", stdout)
    failures = [
        msgspec.json.decode(line)
        for line in (tmp_path / "out.jsonl.failures.jsonl").read_bytes().splitlines()
    ]
    assert {(f["meeting_no"], f["code"]) for f in failures} == {
        (denied.meeting_no, 121005),
        ("999999999", 126009),
    }
    assert {f["log_id"] for f in failures} <= log_ids
    assert all(f["log_id"] for f in failures)
    assert by_meeting(read_jsonl(out)) == {k: v for k, v in truth.items() if v}


BAD_FILES: dict[str, tuple[bytes, list[int]]] = {
    "missing-columns.csv": (b"meeting_no,meeting_start_time\n123456789,1700000000\n", [1]),
    "bad-numbers.csv": (
        b"meeting_no,meeting_start_time,meeting_end_time\n"
        b"123456789,1700000000,1700003600\n"
        b"12345678x,1700000000,1700003600\n"
        b"123456780,17000000.5,1700003600\n"
        b"123456781,1700000000,soon\n",
        [3, 4, 5],
    ),
    "times.csv": (
        b"meeting_no,meeting_start_time,meeting_end_time,user_id,room_id\n"
        b"123456789,1700003600,1700000000,,\n"
        b"123456780,1700000000,1700090000,,\n"
        b"123456781,1700000000,1700003600,ou_a,omm_b\n"
        b"123456782,1700000000,1700003600,,\n",
        [2, 3, 4],
    ),
    "empty.csv": (b"", [0]),
    "garbage.jsonl": (bytes(range(256)) * 4, [1]),
    "bad.jsonl": (
        b'{"meeting_no": "123456789", "meeting_start_time": 1700000000, '
        b'"meeting_end_time": 1700003600}\n'
        b"{not json\n"
        b'{"meeting_no": "123456789", "meeting_start_time": 1700000000}\n',
        [2, 3],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
async def test_bad_input_exits_2_naming_every_line_before_any_request(
    tmp_path: Path, name: str
) -> None:
    data, lines = BAD_FILES[name]
    meetings = tmp_path / name
    meetings.write_bytes(data)
    async with Emulator(meetings=3, seed=1, rate_limit=None) as emu:
        code, stdout, stderr = await run_cli(
            export_argv(emu, meetings, tmp_path / "out.jsonl"), app_env(emu)
        )
        assert emu.requests == []
    assert code == 2
    assert stdout == ""
    named = sorted({int(n) for n in re.findall(rf"{re.escape(name)}:(\d+):", stderr)})
    if lines == [0]:
        assert "no meetings" in stderr
    else:
        assert named == lines, stderr
    assert "nothing was requested" in stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate-limit", "fast"], "--rate-limit"),
        (["--page-size", "500"], "--page-size 500"),
        (["--fields", "meeting_no,mail"], "unknown column(s) mail"),
        (["--format", "csv", "--resume", "--overwrite"], "--resume or --overwrite"),
        (["--lark", "--base-url", "http://127.0.0.1:1"], "--base-url or --lark"),
    ],
)
async def test_bad_options_exit_2(tmp_path: Path, argv: list[str], message: str) -> None:
    meetings = tmp_path / "m.csv"
    meetings.write_text("meeting_no,meeting_start_time,meeting_end_time\n123456789,1,2\n")
    code, _, stderr = await run_cli(
        ["export", "--meetings", str(meetings), "--out", str(tmp_path / "o.jsonl"), *argv],
        {"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s3cr3t-value"},
    )
    assert code == 2
    assert message in stderr
    assert "s3cr3t-value" not in stderr


async def test_at_most_20_bad_rows_are_printed_then_a_count(tmp_path: Path) -> None:
    meetings = tmp_path / "m.csv"
    meetings.write_text(
        "meeting_no,meeting_start_time,meeting_end_time\n"
        + "".join("12345,1700000000,1700003600\n" for _ in range(25))
    )
    code, _, stderr = await run_cli(
        ["export", "--meetings", str(meetings), "--out", str(tmp_path / "o.jsonl")],
        {"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s"},
    )
    assert code == 2
    assert "25 problem(s)" in stderr
    assert sorted(int(n) for n in re.findall(r"m\.csv:(\d+):", stderr)) == list(range(2, 22))
    assert stderr.rstrip().endswith("... and 5 more problem(s)")


async def test_unknown_columns_are_ignored_with_one_warning(tmp_path: Path) -> None:
    async with Emulator(meetings=5, seed=3, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        meetings.write_text(
            "topic,meeting_no,meeting_start_time,meeting_end_time,organizer\n"
            + "".join(
                f"=cmd,{q.meeting_no},{q.meeting_start_time},{q.meeting_end_time},Ann\n"
                for q in emu.meetings
            )
        )
        out = tmp_path / "o.jsonl"
        code, stdout, stderr = await run_cli(export_argv(emu, meetings, out), app_env(emu))
    assert code == 0, stderr
    assert "Exported 5 of 5 meetings" in stdout
    assert stderr.count("ignoring column(s)") == 1
    assert "'topic'" in stderr
    assert "organizer" not in stderr  # meeting_list's: known, read past without a word


async def test_out_hard_linked_to_the_meetings_file_is_refused(tmp_path: Path) -> None:
    meetings = tmp_path / "m.csv"
    content = "meeting_no,meeting_start_time,meeting_end_time\n123456789,1700000000,1700003600\n"
    meetings.write_text(content)
    out = tmp_path / "another-name.csv"
    os.link(meetings, out)
    argv = ["export", "--meetings", str(meetings), "--out", str(out)]
    code, _, stderr = await run_cli(
        [*argv, "--base-url", "http://127.0.0.1:1", "--max-retries", "0"],
        {"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s"},
    )
    assert code == 2
    assert "--out is the meetings file" in stderr
    assert meetings.read_text() == content


async def test_csv_raw_reaches_the_config(tmp_path: Path) -> None:
    env = {"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s"}
    argv = ["export", "--meetings", "m.csv", "--out", str(tmp_path / "o.csv")]
    assert "csv_raw" not in command_from_args(build_parser().parse_args(argv), env).output.shape
    raw = build_parser().parse_args([*argv, "--csv-raw"])
    assert "csv_raw" in command_from_args(raw, env).output.shape


async def test_no_credentials_exit_2(tmp_path: Path) -> None:
    meetings = tmp_path / "m.csv"
    meetings.write_text("meeting_no,meeting_start_time,meeting_end_time\n123456789,1,2\n")
    code, _, stderr = await run_cli(
        ["export", "--meetings", str(meetings), "--out", str(tmp_path / "o.jsonl")], {}
    )
    assert code == 2
    assert "no credentials" in stderr


async def test_refused_credentials_stop_the_run_with_exit_2(tmp_path: Path) -> None:
    async with Emulator(meetings=20, seed=2, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        env = {"FEISHU_APP_ID": emu.app_id, "FEISHU_APP_SECRET": "wrong-secret-123"}
        code, _, stderr = await run_cli(
            export_argv(emu, meetings, tmp_path / "o.jsonl", "--max-retries", "0"), env
        )
        participant_calls = [r for r in emu.requests if not r.token_request]
    assert code == 2
    assert "refused the credentials" in stderr
    assert "wrong-secret-123" not in stderr
    # It stopped at the refusal instead of failing all 20 meetings one by one.
    assert len(participant_calls) == 0


async def test_redact_pii_leaves_no_phone_email_or_ip(tmp_path: Path) -> None:
    async with Emulator(meetings=40, seed=9, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        out = tmp_path / "out.csv"
        argv = export_argv(emu, meetings, out, "--redact-pii")
        code, _, stderr = await run_cli(argv, app_env(emu))
        assert code == 0, stderr
        secrets = {
            getattr(p, f)
            for q in emu.meetings
            for p in emu.participants(q)
            for f in PII_FIELDS
            if f in PARTICIPANT_FIELDS and getattr(p, f)
        }
        names = {p.participant_name for q in emu.meetings for p in emu.participants(q)}
    text = out.read_text(encoding="utf-8")
    with out.open(newline="", encoding="utf-8") as fh:
        cells = {cell for row in csv.reader(fh) for cell in row}
    assert len(secrets) > 100
    assert not secrets & cells
    assert "@" not in text
    assert not re.search(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", text)
    assert not re.search(r"\+86-1\d{10}", text)
    assert any(name in text for name in names)  # the rest is still there


async def test_fields_choose_columns_in_order(tmp_path: Path) -> None:
    async with Emulator(meetings=10, seed=4, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.jsonl"
        meetings.write_bytes(
            msgspec.json.Encoder().encode_lines(
                [
                    {
                        "meeting_no": q.meeting_no,
                        "meeting_start_time": datetime.fromtimestamp(
                            q.meeting_start_time, UTC
                        ).isoformat(),
                        "meeting_end_time": q.meeting_end_time,
                    }
                    for q in emu.meetings
                ]
            )
        )
        out = tmp_path / "out.jsonl"
        code, _, stderr = await run_cli(
            export_argv(emu, meetings, out, "--fields", "participant_name,meeting_no"),
            app_env(emu),
        )
        assert code == 0, stderr
        total = sum(len(emu.participants(q)) for q in emu.meetings)
    rows = read_jsonl(out)
    assert len(rows) == total
    assert all(list(r) == ["participant_name", "meeting_no"] for r in rows)


async def test_no_secret_in_any_output_or_log(tmp_path: Path) -> None:
    """Subprocess with -vv: stdout, stderr, output, checkpoint and failures hold no secret."""
    async with Emulator(meetings=25, seed=8, rate_limit=None) as emu:
        emu.deny_meeting(emu.meetings[0].meeting_no)  # a failures file too
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        user_token = emu.add_user_token()
        runs = []
        for fmt, creds in (
            ("jsonl", []),
            ("parquet", ["--access-token", user_token]),
        ):
            out = tmp_path / f"out-{fmt}.{fmt}"
            result = await anyio.run_process(
                [
                    sys.executable,
                    "-m",
                    "feishu_vc_async",
                    "-vv",
                    *export_argv(emu, meetings, out),
                    *creds,
                ],
                env={"PATH": "/usr/bin:/bin", **({} if creds else app_env(emu))},
                check=False,
            )
            runs.append(result)
        tokens = {r.token for r in emu.requests if r.token}
        secrets = {emu.app_secret, user_token, *tokens}
        secrets |= {t.removeprefix("Bearer ") for t in tokens}
    assert [r.returncode for r in runs] == [1, 1]
    assert all(b"DEBUG feishu_vc_async" in r.stderr for r in runs)  # the logs were on
    assert len(tokens) >= 2  # a tenant token and the user token were used
    blobs = [r.stdout for r in runs] + [r.stderr for r in runs]
    blobs += [p.read_bytes() for p in tmp_path.iterdir() if p.is_file()]
    assert len(blobs) >= 8  # outputs, checkpoints, failures files, meetings
    leaks = [s for s in secrets for blob in blobs if s.encode() in blob]
    assert leaks == []


async def test_unreachable_redis_is_a_configuration_error(tmp_path: Path) -> None:
    async with Emulator(meetings=5, seed=2, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        code, _, stderr = await run_cli(
            export_argv(
                emu, meetings, tmp_path / "o.jsonl", "--redis-url", "redis://:pw123@127.0.0.1:1/0"
            ),
            app_env(emu),
        )
        participant_calls = [r for r in emu.requests if not r.token_request]
    assert code == 2
    assert "rate limiter cannot be used" in stderr
    assert "pw123" not in stderr
    assert participant_calls == []


async def test_export_through_the_redis_limiter(tmp_path: Path, redis_url: str) -> None:
    import uuid

    import redis

    prefix = f"test_cli_{uuid.uuid4().hex[:8]}"
    try:
        async with Emulator(meetings=20, seed=2, rate_limit=None) as emu:
            meetings = tmp_path / "meetings.csv"
            write_meetings_csv(meetings, emu.meetings)
            out = tmp_path / "o.jsonl"
            argv = export_argv(
                emu, meetings, out, "--redis-url", redis_url, "--redis-prefix", prefix
            )
            code, _, stderr = await run_cli(argv, app_env(emu))
            truth = ground_truth(emu, emu.meetings)
        r = redis.Redis.from_url(redis_url)
        try:
            used = list(r.scan_iter(f"{prefix}*"))
        finally:
            r.close()
    finally:
        r = redis.Redis.from_url(redis_url)
        try:
            keys = list(r.scan_iter(f"{prefix}*"))
            if keys:
                r.delete(*keys)
        finally:
            r.close()
    assert code == 0, stderr
    assert used  # the slots were taken in Redis, under our prefix
    assert by_meeting(read_jsonl(out)) == {k: v for k, v in truth.items() if v}


async def test_a_meetings_list_with_sizes_is_fetched_largest_first(tmp_path: Path) -> None:
    async with Emulator(
        meetings=12, seed=5, rate_limit=None, data=MeetingData(webinars=1, webinar_size=250)
    ) as emu:
        sizes = {q.key: len(emu.participants(q)) for q in emu.meetings}
        biggest = max(emu.meetings, key=lambda q: sizes[q.key])
        listed = sorted(emu.meetings, key=lambda q: sizes[q.key])  # the biggest last
        plain, sized = tmp_path / "plain.csv", tmp_path / "sized.csv"
        write_meetings_csv(plain, listed)
        with plain.open() as fh:
            rows = list(csv.DictReader(fh))
        with sized.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, [*rows[0], "number_of_participants"])
            writer.writeheader()
            for row, query in zip(rows, listed, strict=True):
                writer.writerow({**row, "number_of_participants": sizes[query.key]})
        out = tmp_path / "out.jsonl"
        argv = export_argv(emu, sized, out, "--concurrency", "1")
        code, _, stderr = await run_cli(argv, app_env(emu))
        assert code == 0, stderr
        first = next(r for r in emu.requests if not r.token_request)
        assert first.params["meeting_no"] == biggest.meeting_no
        # The checkpoint names the list in the file's order, sizes or not: the same
        # meetings without the column are the same export.
        code, stdout, stderr = await run_cli(export_argv(emu, plain, out, "--resume"), app_env(emu))
        assert code == 0, stderr
        assert "another meetings list" not in stdout + stderr
