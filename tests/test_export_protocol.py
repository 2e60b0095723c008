"""The export's output protocol, driven through ``export(client, job)`` with an output
that keeps meetings whole and commits like a database (``tests/_memory_output.py``): a
crash at any commit leaves each meeting all there or not at all, and the resumed run
completes it exactly once."""

from __future__ import annotations

import anyio
import pytest

from feishu_vc_async.emulator import Emulator, MeetingData
from feishu_vc_async.export import ExportJob, RowBuilder, export
from feishu_vc_async.export._ledger import HELD_ROWS_DEFAULT
from tests._fanout import make_client
from tests._memory_output import MemoryOutput, MemoryStore

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("crash_after", [1, 3, 6])
# 50 rows held in memory: meetings in flight wait in spool files, and land the same.
@pytest.mark.parametrize("held_rows", [HELD_ROWS_DEFAULT, 50])
async def test_a_crash_at_any_commit_leaves_whole_meetings_and_the_resume_ends_exact(
    crash_after: int, held_rows: int
) -> None:
    data = MeetingData(webinars=1, webinar_size=450)
    async with Emulator(meetings=24, seed=21, rate_limit=None, data=data) as emu:
        truth = {q.key: len(emu.participants(q)) for q in emu.meetings}
        store = MemoryStore(truth, crash_after=crash_after)
        job = ExportJob(
            emu.meetings,
            MemoryOutput(store),
            mode="resume",
            page_size=100,
            commit_interval=0,
            held_rows=held_rows,
        )
        async with make_client(emu) as client, anyio.create_task_group() as tasks:
            tasks.start_soon(export, client, job)
            await store.crashed.wait()
            tasks.cancel_scope.cancel()
        landed = set(store.rows)
        assert store.commits == crash_after
        assert landed < set(truth)  # the crash left work to do

        store.crash_after = None
        store.crashed = anyio.Event()
        emu.reset_log()
        again = ExportJob(
            emu.meetings, MemoryOutput(store), mode="resume", page_size=100, held_rows=held_rows
        )
        async with make_client(emu) as client:
            run = await export(client, again)
        assert run.complete
        builder = RowBuilder()
        assert store.rows == {q.key: builder.rows(q, emu.participants(q)) for q in emu.meetings}
        assert store.partial_seen == []  # no commit ever showed a meeting in part
        assert store.tokens_seen == 0  # nor a meeting's next page in its state
        asked = {
            q.key
            for q in emu.meetings
            for r in emu.requests
            if r.path.endswith("participant_list")
            and r.params.get("meeting_no") == q.meeting_no
            and int(r.params["meeting_start_time"]) == q.meeting_start_time
        }
        assert asked == set(truth) - landed  # what landed is not asked again
