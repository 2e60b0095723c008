"""`feishu-vc export` when things fail: transient failures are retried by --resume,
permanent ones end the export, a failing token endpoint or Redis stops the run once, and
a run that stops before any data leaves nothing that blocks the corrected command."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from feishu_vc_async._constants import TENANT_TOKEN_PATH
from feishu_vc_async.emulator import Emulator, Faults
from feishu_vc_async.export._checkpoint import CheckpointFile
from feishu_vc_async.export._input_writer import write_meetings_csv
from feishu_vc_async.export._rows import PII_FIELDS
from tests._cli import app_env, by_meeting, export_argv, ground_truth, run_cli
from tests._scripted_server import LIST, Reply, ScriptedServer

pytestmark = pytest.mark.anyio


def _failures(out: Path) -> list[dict[str, object]]:
    path = out.with_name(out.name + ".failures.jsonl")
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def _asked(emu: Emulator) -> list[str]:
    """The meeting numbers participant_list was asked for."""
    return [r.params["meeting_no"] for r in emu.requests if not r.token_request]


async def test_permanent_failures_finish_the_export_and_transient_ones_are_resumed(
    tmp_path: Path,
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    async with Emulator(meetings=30, seed=5, rate_limit=None, faults=Faults(seed=3)) as emu:
        denied = emu.meetings[3]
        emu.deny_meeting(denied)
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        out = tmp_path / "out.parquet"
        journal = tmp_path / "out.parquet.journal.jsonl"
        # One meeting at a time: the seeded faults hit the same requests on every run.
        argv = export_argv(emu, meetings, out, "--max-retries", "0", "--concurrency", "1")

        # 1. A 121001 now and then, not retried (--max-retries 0): transient failures.
        emu.faults = Faults(seed=3, error_rate=0.25)
        code, stdout, _ = await run_cli(argv, app_env(emu))
        transient = {f["meeting_no"] for f in _failures(out) if not f["permanent"]}
        assert code == 1
        assert transient
        assert re.search(rf"{denied.meeting_no}\s+code=121005\s.*\(for good\)", stdout)
        assert "--resume to retry them" in stdout
        assert journal.exists()  # unfinished: the journal stays for the next run

        # 2. --resume asks again for the transient ones only, and the export is finished.
        emu.faults = Faults()
        emu.reset_log()
        code, stdout, _ = await run_cli([*argv, "--resume"], app_env(emu))
        assert code == 1
        assert sorted(set(_asked(emu))) == sorted(transient - {denied.meeting_no})
        assert "The export is finished" in stdout
        assert not journal.exists()  # converted and removed
        (kept,) = _failures(out)  # the earlier run's line, log id and all
        assert (kept["meeting_no"], kept["code"], kept["permanent"]) == (
            denied.meeting_no,
            121005,
            True,
        )
        assert kept["log_id"]
        checkpoint = CheckpointFile(tmp_path / "out.parquet.checkpoint.json").load()
        assert checkpoint is not None
        state = checkpoint.state
        assert state.finalized
        assert state.resume.failed == {denied.key: 121005}

        # 3. --resume of a finished export asks nothing, says so, and still exits 1.
        emu.reset_log()
        code, stdout, _ = await run_cli([*argv, "--resume"], app_env(emu))
        assert code == 1
        assert emu.requests == []
        assert "Nothing to do" in stdout
        assert "1 failed for good" in stdout

        # 4. --retry-failed asks for it again (once), on top of the finished Parquet file.
        code, stdout, _ = await run_cli([*argv, "--retry-failed"], app_env(emu))
        assert code == 1
        assert _asked(emu) == [denied.meeting_no]
        assert "The export is finished" in stdout
        truth = ground_truth(emu, [q for q in emu.meetings if q != denied])
    assert not journal.exists()
    assert not tmp_path.joinpath("out.parquet.base").exists()
    got = by_meeting(pq.read_table(out).to_pylist())
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in truth.items() if v}


async def test_a_failing_token_endpoint_stops_the_run_once(tmp_path: Path) -> None:
    async with Emulator(meetings=20, seed=2, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        out = tmp_path / "o.jsonl"
        argv = export_argv(emu, meetings, out, "--max-retries", "2", "-v")
        emu.fail_token_endpoint("tenant_token", times=3)  # HTTP 500, an nginx page
        code, stdout, stderr = await run_cli(argv, app_env(emu))
        token_requests = [r for r in emu.requests if r.token_request]
        asked = _asked(emu)

        # Nothing was written: the same command, once the endpoint is back, just runs.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["meetings.csv"]
        code2, stdout2, stderr2 = await run_cli(argv, app_env(emu))
        assert code2 == 0, stderr2
    assert code == 2
    host = emu.base_url.removeprefix("http://")
    assert f"cannot get an access token from {host}" in stderr
    assert stderr.count("feishu-vc export: error:") == 1
    assert "stopped before writing anything" in stderr
    # One bounded retry loop of the token request for the whole run, not one per meeting,
    # and the retry log names that request.
    assert len(token_requests) == 3
    assert asked == []
    assert len(re.findall(rf"POST {TENANT_TOKEN_PATH}: retry [12]/2", stderr)) == 2
    assert stdout == ""
    assert "Exported 20 of 20 meetings" in stdout2


async def test_an_unreachable_host_fails_once_naming_it(tmp_path: Path) -> None:
    meetings = tmp_path / "m.csv"
    meetings.write_text(
        "meeting_no,meeting_start_time,meeting_end_time\n"
        + "".join(f"12345678{n},1700000000,1700003600\n" for n in range(8))
    )
    code, stdout, stderr = await run_cli(
        [
            "export",
            "--meetings",
            str(meetings),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--base-url",
            "http://127.0.0.1:1",
            "--max-retries",
            "1",
        ],
        {"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s"},
    )
    assert code == 2
    assert stderr.count("cannot get an access token from 127.0.0.1:1") == 1
    assert not (tmp_path / "o.jsonl.failures.jsonl").exists()
    assert stdout == ""


async def test_refused_credentials_leave_nothing_that_blocks_the_corrected_command(
    tmp_path: Path,
) -> None:
    async with Emulator(meetings=10, seed=2, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        argv = export_argv(emu, meetings, tmp_path / "o.csv")
        wrong = {"FEISHU_APP_ID": emu.app_id, "FEISHU_APP_SECRET": "wrong-secret-123"}
        code, _, stderr = await run_cli(argv, wrong)
        assert code == 2
        assert "refused the credentials" in stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["meetings.csv"]
        code, stdout, stderr = await run_cli(argv, app_env(emu))
    assert code == 0, stderr
    assert "Exported 10 of 10 meetings" in stdout


async def test_unreachable_redis_names_the_cli_flag_and_the_flag_works(tmp_path: Path) -> None:
    async with Emulator(meetings=5, seed=2, rate_limit=None) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        redis = ["--redis-url", "redis://:pw123@127.0.0.1:1/0"]
        argv = export_argv(emu, meetings, tmp_path / "o.jsonl", *redis)
        code, _, stderr = await run_cli(argv, app_env(emu))
        assert code == 2
        assert "--redis-fallback" in stderr
        assert "fallback_local" not in stderr  # a library argument means nothing to a CLI user
        assert "pw123" not in stderr
        # No checkpoint blocks the same command with the flag.
        code, stdout, stderr = await run_cli([*argv, "--redis-fallback"], app_env(emu))
    assert code == 0, stderr
    assert "Exported 5 of 5 meetings" in stdout
    assert "pacing in this process only" in stderr


async def test_redact_pii_keeps_personal_data_out_of_error_snippets(tmp_path: Path) -> None:
    """A page cut short in the middle of its people: the failure's text (stdout and the
    failures file) tells what happened without the body's phones, emails and IPs."""
    person = {
        "participant_name": "Ann",
        "phone": "+86-13800138000",
        "email": "ann@example.com",
        "public_ip": "203.0.113.7",
        "internal_ip": "10.1.2.3",
        "employee_id": "E9001",
    }
    body = msgspec.json.encode({"code": 0, "msg": "success", "data": {"participants": [person]}})
    personal = [v for k, v in person.items() if k in PII_FIELDS]
    assert len(personal) == 5
    meetings = tmp_path / "m.csv"
    meetings.write_text(
        "meeting_no,meeting_start_time,meeting_end_time\n123456789,1700000000,1700003600\n"
    )
    outputs: dict[bool, tuple[str, str, bytes]] = {}
    for redact in (False, True):
        async with ScriptedServer() as server:
            server.serve_tokens()
            server.always(LIST, Reply(body=body[: len(body) - 20]))  # cut short: HTTP 200
            out = tmp_path / f"o-{redact}.jsonl"
            argv = export_argv(server.base_url, meetings, out, "--max-retries", "0", "-vv")
            code, stdout, stderr = await run_cli(
                [*argv, *(["--redact-pii"] if redact else [])],
                {"FEISHU_APP_ID": "cli_test", "FEISHU_APP_SECRET": "s3cret-app-secret"},
            )
            assert server.token_requests == 1
            assert len(server.list_requests()) == 1
        assert code == 1, stderr
        outputs[redact] = (stdout, stderr, out.with_name(out.name + ".failures.jsonl").read_bytes())
    shown = "".join(outputs[False][:2]) + outputs[False][2].decode()
    assert "ann@example.com" in shown  # without redaction the snippet says what came
    stdout, stderr, failures = outputs[True]
    assert "body was cut short" in stdout
    assert b"body was cut short" in failures
    text = stdout + stderr + failures.decode()
    assert [v for v in personal if v in text] == []
