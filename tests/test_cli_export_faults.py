"""The fault matrix: an export through every kind of fault the emulator injects at once
(5 % HTTP 500 with 121001, 2 % HTTP 200 cut short, 1 % proxy HTML 502, 1 % connections
reset mid-body) still holds every participant exactly once, fails no meeting, exits 0,
and shows no token, secret or (under --redact-pii) personal value anywhere: stdout,
stderr at -vv, the output, the checkpoint.

The faults are drawn from a seeded RNG in request order, so how many there are is the
same on every run; which meeting meets which one varies with timing, and every one of
them must be retried. Nothing here measures time.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from feishu_vc_async.emulator import Emulator, Faults, MeetingData
from feishu_vc_async.export._input_writer import write_meetings_csv
from feishu_vc_async.export._rows import PII_FIELDS
from feishu_vc_async.ratelimit import RateLimit
from tests._cli import app_env, by_meeting, ground_truth, read_jsonl, run_cli

pytestmark = pytest.mark.anyio

FAULTS = Faults(seed=2024, error_rate=0.05, truncate_rate=0.02, html_rate=0.01, reset_rate=0.01)
# Scaled: 300 requests per 3 s at the gateway and in the client (the real one is 100/60s).
RATE = RateLimit(300, 3.0)


_SHAPES = re.compile(
    r"\+86-[0-9]+"  # a phone
    r"|[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+"  # an email
    r"|(?<![0-9.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9.])"  # an IPv4 address
    r"|(?<![A-Za-z0-9])(?:t|u|ur|a)-[A-Za-z0-9_.~+/=-]{12,}"  # a token (as _scrub sees one)
)


async def test_fault_matrix_exports_every_participant_once_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    async with Emulator(
        meetings=220,
        seed=17,
        rate_limit=RATE,
        faults=FAULTS,
        data=MeetingData(webinars=2, webinar_size=450),
    ) as emu:
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        out = tmp_path / "out.jsonl"
        code, stdout, stderr = await run_cli(
            [
                "export",
                *("--meetings", str(meetings), "--out", str(out), "--base-url", emu.base_url),
                *("--rate-limit", str(RATE), "--max-retries", "12", "--progress", "log"),
                *("--log-interval", "0.5", "--redact-pii", "-vv"),
            ],
            app_env(emu),
        )
        truth = ground_truth(emu, emu.meetings, redact_pii=True)
        people = [p for q in emu.meetings for p in emu.participants(q)]
        faults = Counter(r.fault for r in emu.requests if r.fault)
        secrets = {emu.app_secret} | {r.token for r in emu.requests if r.token}
    assert code == 0, stderr[-3000:]
    assert faults.keys() == {"server_error", "truncated", "html", "reset"}, faults
    assert sum(faults.values()) >= 10
    assert "Exported 220 of 220 meetings" in stdout
    assert "failed" not in stdout
    assert not (tmp_path / "out.jsonl.failures.jsonl").exists()
    # Every fault was retried: the log names each retried request, at -vv after the command.
    assert stderr.count("retry 1/12") >= 10
    assert "DEBUG feishu_vc_async" in stderr
    # Exactly once, in page order within each meeting.
    assert by_meeting(read_jsonl(out)) == {k: v for k, v in truth.items() if v}

    blobs = {
        "stdout": stdout,
        "stderr": stderr,
        "output": out.read_text(encoding="utf-8"),
        "checkpoint": (tmp_path / "out.jsonl.checkpoint.json").read_text(encoding="utf-8"),
    }
    # No failures file, no lock left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "meetings.csv",
        "out.jsonl",
        "out.jsonl.checkpoint.json",
    ]
    personal = {p.phone for p in people if p.phone} | {p.email for p in people if p.email}
    personal |= {ip for p in people for ip in (p.public_ip, p.internal_ip) if ip}
    assert len(personal) > 300
    assert set(PII_FIELDS) >= {"phone", "email", "public_ip", "internal_ip"}
    # Everything in the texts shaped like a phone, an email, an IP address or a token,
    # looked up in the emulator's values (one pass over megabytes of text).
    found = {(name, hit) for name, text in blobs.items() for hit in _SHAPES.findall(text)}
    leaks = sorted((name, hit) for name, hit in found if hit in personal or hit in secrets)
    leaks += [(name, "app secret") for name, text in blobs.items() if emu.app_secret in text]
    assert leaks == []
