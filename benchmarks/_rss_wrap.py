"""Run a module as ``__main__`` and write this process's peak RSS (MB) and CPU seconds
as JSON to the file named by ``BENCH_RSS_OUT``, however the module exits.

``python -m benchmarks._rss_wrap feishu_vc_async export ...`` is ``feishu-vc export ...``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import runpy
import sys


def _peak_mb(usage: resource.struct_rusage) -> float:
    """This program's own peak: the kernel's high-water mark (VmHWM). getrusage's
    ``ru_maxrss`` survives exec, so a child forked from a large parent (the benchmark
    runner) would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            found = re.search(r"VmHWM:\s+(\d+) kB", status.read())
    except OSError:
        found = None
    return int(found.group(1)) / 1024 if found else usage.ru_maxrss / 1024


def main() -> None:
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open(os.environ["BENCH_RSS_OUT"], "w") as f:
            json.dump({"maxrss_mb": _peak_mb(usage), "cpu_s": usage.ru_utime + usage.ru_stime}, f)


if __name__ == "__main__":
    main()
