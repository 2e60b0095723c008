"""Running ``feishu-vc`` in-process against an emulator, and reading what it wrote.

The CLI runs in a worker thread (its own event loop, as ``asyncio.run`` gives it) while
the emulator serves from the test's loop.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec

from feishu_vc_async.cli import main
from feishu_vc_async.emulator import Emulator
from feishu_vc_async.export._rows import RowBuilder
from feishu_vc_async.models import MeetingQuery

__all__ = [
    "FAST",
    "app_env",
    "by_meeting",
    "export_argv",
    "ground_truth",
    "meeting_key",
    "read_jsonl",
    "run_cli",
]

FAST = ["--rate-limit", "1000/1s", "--progress", "log", "--log-interval", "0.2"]


def app_env(emu: Emulator) -> dict[str, str]:
    return {"FEISHU_APP_ID": emu.app_id, "FEISHU_APP_SECRET": emu.app_secret}


async def run_cli(argv: Sequence[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``feishu-vc ARGV`` in a worker thread: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        return main(list(argv), env=env, stdout=out, stderr=err)

    code = await anyio.to_thread.run_sync(call)
    return code, out.getvalue(), err.getvalue()


def export_argv(server: Emulator | str, meetings: Path, out: Path, *extra: str) -> list[str]:
    """``export`` of ``meetings`` to ``out`` from ``server`` (an emulator or a base URL)."""
    base_url = server if isinstance(server, str) else server.base_url
    io_args = ["--meetings", str(meetings), "--out", str(out), "--base-url", base_url]
    return ["export", *io_args, *FAST, *extra]


def meeting_key(meeting_no: object, start: object) -> str:
    """Number and start: personal meeting numbers recur, so a number alone is ambiguous."""
    if isinstance(start, datetime):
        start = int(start.timestamp())
    return f"{meeting_no}@{start}"


def ground_truth(
    emu: Emulator, queries: Sequence[MeetingQuery], *, redact_pii: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """The rows an export of ``queries`` holds, by meeting, from the emulator's data."""
    builder = RowBuilder(redact_pii=redact_pii)
    return {
        meeting_key(q.meeting_no, q.meeting_start_time): builder.rows(q, emu.participants(q))
        for q in queries
    }


def by_meeting(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[meeting_key(row["meeting_no"], row["meeting_start_time"])].append(row)
    return dict(grouped)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    decoder = msgspec.json.Decoder(dict[str, Any])
    return [decoder.decode(line) for line in path.read_bytes().splitlines()]
