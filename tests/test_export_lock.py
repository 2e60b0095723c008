"""One writer per output: the lock beside it, who holds it, and what does not block."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from feishu_vc_async.export._lock import OutputInUseError, output_lock

_HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from feishu_vc_async.export._lock import output_lock\n"
    "with output_lock(Path(sys.argv[1]), out=Path(sys.argv[2])):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


def test_a_held_lock_refuses_a_second_writer_naming_the_holder(tmp_path: Path) -> None:
    lock, out = tmp_path / "o.jsonl.lock", tmp_path / "o.jsonl"
    with output_lock(lock, out=out):
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        with pytest.raises(OutputInUseError) as info, output_lock(lock, out=out):
            pass
        message = str(info.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}, started 20" in message
        assert str(out) in message
        assert lock.exists()  # the refused run did not take it away from the holder
    assert not lock.exists()
    with output_lock(lock, out=out):  # free again
        pass


def test_a_lock_file_without_a_live_holder_blocks_nothing(tmp_path: Path) -> None:
    lock, out = tmp_path / "o.csv.lock", tmp_path / "o.csv"
    lock.write_text('{"pid": 1, "host": "elsewhere", "started": "2020-01-01T00:00:00Z"}')
    with output_lock(lock, out=out):  # a file is not a lock: only flock is trusted
        assert "elsewhere" not in lock.read_text()
    # A holder killed with SIGKILL: the kernel drops its lock with it.
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lock), str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        busy = pytest.raises(OutputInUseError, match=f"pid {holder.pid} ")
        with busy, output_lock(lock, out=out):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert lock.exists()  # left behind by the killed holder...
    with output_lock(lock, out=out):  # ...and harmless
        pass
