"""The `feishu-vc` command surface: subcommands wired, console script installed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from feishu_vc_async.cli import build_parser, main

BIN = Path(sys.executable).parent


def test_subcommands_and_their_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["emulator", "--port", "0", "--meetings", "7", "--seed", "3"])
    assert (args.port, args.meetings, args.seed) == (0, 7, 3)
    args = parser.parse_args(["export", "--meetings", "m.csv", "--out", "o.parquet"])
    assert args.rate_limit == "100/60s"
    assert args.page_size == 100
    args = parser.parse_args(["demo", "--meetings", "10"])
    assert args.meetings == 10


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Neither a range nor a meetings file: which meetings?
    assert main(["export", "--out", "x.jsonl"], env={}) == 2
    err = capsys.readouterr().err
    assert "--meetings" in err
    assert "--since" in err
    with pytest.raises(SystemExit) as info:
        main(["meetings", "--out", "x.csv"])  # --since and --until are required here
    assert info.value.code == 2
    assert "--since" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_console_script_and_module_agree() -> None:
    script = subprocess.run(
        [str(BIN / "feishu-vc"), "--version"], capture_output=True, text=True, check=False
    )
    module = subprocess.run(
        [sys.executable, "-m", "feishu_vc_async", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert script.returncode == module.returncode == 0
    assert script.stdout.split()[-1] == module.stdout.split()[-1]
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", module.stdout.split()[-1])


def test_emulator_command_serves_what_export_reads(tmp_path: Path) -> None:
    """`feishu-vc emulator` in one process, `feishu-vc export` in another, as a user would."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "feishu_vc_async",
            "emulator",
            "--port",
            "0",
            "--meetings",
            "5",
            "--seed",
            "3",
            "--rate-limit",
            "none",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = ""
        while "Ctrl-C" not in banner:
            line = server.stdout.readline()
            assert line, f"emulator exited: {server.stderr.read() if server.stderr else ''}"
            banner += line
        url = re.search(r"serving at (\S+)", banner)
        app_id = re.search(r"app_id:\s+(\S+)", banner)
        secret = re.search(r"app_secret:\s+(\S+)", banner)
        meeting = re.search(
            r"meeting_no=(\d+) meeting_start_time=(\d+) meeting_end_time=(\d+)", banner
        )
        assert url, banner
        assert app_id, banner
        assert secret, banner
        assert meeting, banner
        meetings = tmp_path / "m.csv"
        meetings.write_text(
            "meeting_no,meeting_start_time,meeting_end_time\n" + ",".join(meeting.groups()) + "\n"
        )
        out = tmp_path / "out.csv"
        export = subprocess.run(
            [
                str(BIN / "feishu-vc"),
                "export",
                "--meetings",
                str(meetings),
                "--out",
                str(out),
                "--base-url",
                url.group(1),
                "--rate-limit",
                "100/1s",
            ],
            env={"FEISHU_APP_ID": app_id.group(1), "FEISHU_APP_SECRET": secret.group(1)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        for stream in (server.stdout, server.stderr):
            if stream is not None:
                stream.close()
    assert export.returncode == 0, export.stderr
    assert "Exported 1 of 1 meetings" in export.stdout
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("meeting_no,meeting_start_time,meeting_end_time,participant_name")
    assert len(rows) > 1
    assert all(row.startswith(meeting.group(1)) for row in rows[1:])
    assert server.returncode == 0


def test_main_leaves_the_logging_setup_as_it_was(tmp_path: Path) -> None:
    import io
    import logging

    logger = logging.getLogger("feishu_vc_async")
    before = (logger.level, list(logger.handlers))
    err = io.StringIO()
    code = main(
        ["-vv", "export", "--meetings", str(tmp_path / "absent.csv"), "--out", "o.jsonl"],
        env={"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s"},
        stderr=err,
    )
    assert code == 2
    assert "cannot read" in err.getvalue()
    assert (logger.level, list(logger.handlers)) == before


def _config(argv: list[str], env: dict[str, str]) -> Any:
    from feishu_vc_async.cli.export import command_from_args

    args = build_parser().parse_args(["export", "--meetings", "m.csv", "--out", "o.csv", *argv])
    return command_from_args(args, env).client


def test_credentials_and_hosts_resolution() -> None:
    from feishu_vc_async import FEISHU_BASE_URL, LARK_BASE_URL, AppCredentials
    from feishu_vc_async.errors import ConfigError

    cfg = _config([], {"FEISHU_ACCESS_TOKEN": "u-tok-secret"})
    assert (cfg.auth, cfg.base_url) == ("u-tok-secret", FEISHU_BASE_URL)
    # An argument of one kind wins over the environment of the other.
    cfg = _config(["--access-token", "t-arg"], {"FEISHU_APP_ID": "a", "FEISHU_APP_SECRET": "s"})
    assert cfg.auth == "t-arg"
    cfg = _config(["--app-id", "cli_a", "--lark"], {"FEISHU_APP_SECRET": "sec-from-env"})
    assert (cfg.auth, cfg.base_url) == (AppCredentials("cli_a", "sec-from-env"), LARK_BASE_URL)
    assert "sec-from-env" not in repr(cfg)
    assert "sec-from-env" not in repr(cfg.auth)
    cfg = _config(
        [],
        {"FEISHU_APP_ID": "a", "FEISHU_APP_SECRET": "s", "FEISHU_BASE_URL": "http://127.0.0.1:9/"},
    )
    assert cfg.base_url == "http://127.0.0.1:9"
    for argv, env, message in [
        ([], {"FEISHU_ACCESS_TOKEN": "t", "FEISHU_APP_ID": "a"}, "both"),
        (["--app-id", "a"], {}, "needs --app-secret"),
        (["--access-token", "t", "--app-id", "a"], {}, "not both"),
        ([], {}, "no credentials"),
        (["--base-url", "ftp://x"], {"FEISHU_ACCESS_TOKEN": "t"}, "http:// or https://"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            _config(argv, env)


def test_export_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for code in ("0 all exported", "1 some meetings failed", "2 bad input", "130", "143"):
        assert code in text
    assert "--retry-failed" in text
    assert "--redis-fallback" in text


def test_verbosity_counts_before_and_after_the_command() -> None:
    """-v works after the subcommand too (`feishu-vc export ... -vv`), and adds up (main
    logs at DEBUG from 2; the fault-matrix export test sees the DEBUG lines)."""
    io_args = ["--meetings", "m.csv", "--out", "o.jsonl"]
    for argv, count in (
        (["export", *io_args, "-vv"], 2),
        (["-v", "export", *io_args, "-v"], 2),
        (["export", "-v", *io_args], 1),
        (["-v", "emulator"], 1),
        (["emulator", "--port", "0", "-v"], 1),
        (["demo", "-vv"], 2),
        (["export", *io_args], 0),
    ):
        args = build_parser().parse_args(argv)
        assert args.verbose + args.verbose_after == count, argv


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["auth", "login", "--no-browser", "--port", "70000"],
            "--port=70000: must be an integer from 0 to 65535",
        ),
        (
            ["auth", "login", "--no-browser", "--port", "-1"],
            "--port=-1: must be an integer from 0 to 65535",
        ),
        (
            ["demo", "--meetings", "10000000000"],
            "--meetings=10000000000: must be an integer from 1 to 1000000",
        ),
        (["demo", "--meetings", "0"], "--meetings=0: must be an integer from 1 to 1000000"),
    ],
)
def test_an_option_out_of_its_range_exits_2_naming_it_and_the_rule(
    argv: list[str], message: str
) -> None:
    """Checked by ``_validate`` before anything listens or is generated: a port past
    65535 once ended in an OverflowError from bind(), the demo's meetings past the
    emulator's numbers in a ValueError from random.sample (the emulator command's own:
    test_emulator_serve)."""
    import io

    err = io.StringIO()
    code = main(argv, env={"FEISHU_APP_ID": "cli_x", "FEISHU_APP_SECRET": "s"}, stderr=err)
    assert code == 2
    command = " ".join(argv[:2]) if argv[0] == "auth" else argv[0]
    assert err.getvalue() == f"feishu-vc {command}: error: {message}\n"


async def _run_with_a_retry(tmp_path: Path, command: str, flags: list[str]) -> str:
    """``command`` against an emulator whose token endpoint fails once (the client logs
    a WARNING and retries); returns stderr."""
    from feishu_vc_async.emulator import Emulator
    from feishu_vc_async.export._input_writer import write_meetings_csv
    from tests._cli import app_env, export_argv, run_cli

    async with Emulator(meetings=5, seed=3, meeting_list_rate_limit=None) as emu:
        emu.fail_token_endpoint("tenant_token")
        if command == "export":
            meetings = tmp_path / "meetings.csv"
            write_meetings_csv(meetings, emu.meetings)
            argv = export_argv(emu, meetings, tmp_path / "out.jsonl", "--overwrite")
        else:
            since = str(min(q.meeting_start_time for q in emu.meetings))
            argv = ["meetings", "--since", since, "--until", "now", "--out"]
            argv += [str(tmp_path / "m.csv"), "--overwrite", "--base-url", emu.base_url]
        code, stdout, stderr = await run_cli([*argv, *flags], app_env(emu))
    assert code == 0, stderr
    assert ("-q" in flags) == (stdout == ""), stdout
    return stderr


@pytest.mark.anyio
@pytest.mark.parametrize("command", ["export", "meetings"])
async def test_quiet_shows_errors_only_even_with_verbose(tmp_path: Path, command: str) -> None:
    loud = await _run_with_a_retry(tmp_path, command, ["-vv"])
    assert "WARNING feishu_vc_async: POST /open-apis/auth/v3/tenant_access_token" in loud
    assert "retry 1/5" in loud
    assert "DEBUG feishu_vc_async" in loud
    for flags in (["-q"], ["-q", "-v"], ["-vv", "-q"]):
        quiet = await _run_with_a_retry(tmp_path, command, flags)
        assert not re.search(r"(DEBUG|INFO|WARNING) feishu_vc_async", quiet), (flags, quiet)


@pytest.mark.slow
def test_the_demo_exports_then_keeps_a_database_current(tmp_path: Path) -> None:
    """`make demo`, scaled down: both ground-truth checks pass (the sync's part waits
    for two emulated meetings to end, a few seconds of real time)."""
    argv = ["demo", "--meetings", "40", "--rate-limit", "1000/1s", "--progress", "none"]
    argv += ["--out-dir", str(tmp_path / "demo")]
    done = subprocess.run(
        [sys.executable, "-m", "feishu_vc_async", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ground-truth check passed: all" in done.stdout
    assert "the two that ended while it ran were taken as they ended" in done.stdout
    assert (tmp_path / "demo" / "attendance.db").stat().st_mode & 0o077 == 0
