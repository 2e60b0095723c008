"""The pages of meetings in flight, held until each meeting's last page: in memory up to
a budget, past it in anonymous spool files, handed back in order, a page at a time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feishu_vc_async import AppCredentials, Limits, VCClient
from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export import ExportJob, export, file_output
from feishu_vc_async.export._held import HeldPages
from feishu_vc_async.models import Participant
from tests._cli import by_meeting, ground_truth, read_jsonl
from tests._seed import rng_for

pytestmark = pytest.mark.anyio


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _page(key: str, index: int, size: int) -> list[Participant]:
    return [Participant(user_id=f"{key}-{index}-{i}", participant_name="n") for i in range(size)]


def test_past_the_budget_pages_wait_in_anonymous_files_and_come_back_in_order(
    tmp_path: Path,
) -> None:
    rng = rng_for("held-pages")
    held = HeldPages(memory_rows=250, spool_dir=tmp_path)
    sent: dict[str, list[list[Participant]]] = {k: [] for k in ("a", "b", "c")}
    fds = _open_fds()
    for _ in range(60):
        key = rng.choice(list(sent))
        page = _page(key, len(sent[key]), rng.randint(0, 40))
        sent[key].append(page)
        held.add(key, page)
        assert held.rows_in_memory <= 250
    assert held.spilled_pages > 0
    assert _open_fds() > fds  # spool files are open...
    assert list(tmp_path.iterdir()) == []  # ...and have no name: a crash leaves nothing
    for key, pages in sent.items():
        last = _page(key, len(pages), 3)
        count, back = held.release(key, last)
        assert count == len(pages) + 1
        assert [list(p) for p in back] == [*pages, last]
    assert held.rows_in_memory == 0
    assert _open_fds() == fds  # every spool closed once read back


def test_a_dropped_meeting_closes_its_spool_and_frees_its_budget(tmp_path: Path) -> None:
    held = HeldPages(memory_rows=10, spool_dir=tmp_path)
    fds = _open_fds()
    held.add("big", _page("big", 0, 30))  # over the budget alone: spooled at once
    held.add("small", _page("small", 0, 5))
    assert held.spilled_pages == 1
    assert held.rows_in_memory == 5
    held.drop("big")
    assert _open_fds() == fds
    held.close()
    assert held.rows_in_memory == 0
    count, back = held.release("small", [])
    assert (count, list(back)) == (1, [[]])  # forgotten: only the last page comes back


def test_the_budget_is_checked_before_anything_is_held() -> None:
    with pytest.raises(ValueError, match="memory_rows"):
        HeldPages(memory_rows=0)
    with pytest.raises(ValueError, match="held_rows"):
        ExportJob((), file_output("x.jsonl"), held_rows=-1)


async def test_an_export_of_big_meetings_over_a_small_budget_holds_each_row_once(
    tmp_path: Path,
) -> None:
    data = MeetingData(webinars=6, webinar_size=900)
    async with Emulator(meetings=12, seed=31, rate_limit=None, data=data) as emu:
        out = tmp_path / "out" / "participants.jsonl"
        out.parent.mkdir()
        job = ExportJob(
            emu.meetings,
            file_output(out),
            page_size=100,
            concurrency=6,
            held_rows=300,
            spool_dir=out.parent,
        )
        client = VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits.unlimited(),
        )
        async with client:
            run = await export(client, job)
        assert run.complete
        assert run.ledger.held.spilled_pages > 0
        assert by_meeting(read_jsonl(out)) == {
            k: v for k, v in ground_truth(emu, emu.meetings).items() if v
        }
        assert sorted(p.name for p in out.parent.iterdir()) == [
            "participants.jsonl",
            "participants.jsonl.checkpoint.json",
        ]
