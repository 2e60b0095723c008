"""Each benchmark runs in quick mode and produces its figures. No timing is asserted.

The benchmarks run through ``python -m benchmarks.run --quick --only NAME --out DIR``
in subprocesses (some side by side): the same path ``make bench`` takes, and the SDK's imports and
threads stay out of this interpreter (warnings are errors here).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # `make quicktest` leaves them out; `make test` (CI) runs all

ROOT = Path(__file__).resolve().parent.parent

# Figures each benchmark must produce (keys in results.json), by benchmark name.
EXPECTED: dict[str, list[str]] = {
    "decode": [
        "p20.ours_typed",
        "p20.ours_views",
        "p20.sdk",
        "p20.json_loads",
        "p100.ours_typed",
        "p100.ours_views",
        "p100.sdk",
        "p100.json_loads",
    ],
    "emulator": ["pages_per_s", "emulator_cpu_share"],
    "throughput": [
        f"lat{ms}.{side}.{fig}"
        for ms in (0, 20)
        for side in ("ours", "raw", "aiolimiter", "sdk")
        for fig in ("pages_per_s", "cpu_per_1000")
    ],
    "coldstart": ["ours_ms", "sdk_ms", "import_ours_ms", "import_sdk_ms"],
    "quota": [
        *(
            f"lat{ms}.{side}.{fig}"
            for ms in (50, 200, 800)
            for side in ("ours", "aiolimiter", "sdk_paced", "sdk_sleep", "sdk_gather")
            for fig in ("utilization", "finish_s", "rate_limited")
        ),
        *(
            f"lat{ms}.{side}.whole_vs_floor"
            for ms in (50, 200, 800)
            for side in ("ours", "ours_fixed", "aiolimiter")
        ),
    ],
    "memory": [
        f"{size}.{fig}"
        for size in ("baseline", "small", "large")
        for fig in ("peak_rss_mb", "rss_growth_mb", "first_item_ms", "pages_per_s")
    ],
    "export": [
        f"{fmt}.{fig}"
        for fmt in ("jsonl", "csv", "parquet")
        for fig in (
            "seconds",
            "rows_per_s",
            "exporter_cpu_s",
            "emulator_cpu_s",
            "client_cpu_per_1m",
            "client_rows_per_s",
            "peak_rss_mb",
        )
    ],
    "database": [
        "load.convert.rows_per_s",
        *(
            f"load.{way}.{fig}"
            for way in ("ours", "executemany", "copy")
            for fig in ("rows_per_s", "seconds", "client_cpu_s")
        ),
        *(
            f"export.{way}.{fig}"
            for way in ("jsonl", "postgres", "sqlite")
            for fig in (
                "seconds",
                "rows_per_s",
                "exporter_cpu_s",
                "emulator_cpu_s",
                "peak_rss_mb",
                "peak_rss_mb_tenth",
            )
        ),
    ],
    "range": [
        *(
            f"{setting}.ideal.{fig}"
            for setting in ("same", "slow_list")
            for fig in ("discovery_s", "fetch_s", "max_s", "sum_s", "pipeline_s", "ours_pacing_s")
        ),
        *(
            f"{setting}.{way}.{fig}"
            for setting, ways in (
                ("same", ("ours", "two_step", "sdk")),
                ("slow_list", ("ours", "two_step")),  # the SDK loop: same limits only
            )
            for way in ways
            for fig in ("span_s", "wall_s", "requests", "rate_limited")
        ),
    ],
    "events": [
        f"sqlite.{load}.{fig}"
        for load in ("steady", "burst")
        for fig in (
            "p50_s",
            "p99_s",
            "floor_p50_s",
            "floor_p99_s",
            "max_s",
            "rate_limited",
            "lost",
            "stage_inbox_p50_s",
            "stage_wait_p50_s",
            "stage_fetch_p50_s",
        )
    ],
    "workers": [
        *(
            f"{way}.{fig}"
            for way in ("ref", "w1", "w2")
            for fig in (
                "wall_s",
                "span_s",
                "pages",
                "pages_per_s",
                "cpu_per_page_ms",
                "emulator_cpu_s",
                "busy_cores",
                "machine_cores",
                "rate_limited",
            )
        ),
        *(f"{way}.scheduler_wall_s" for way in ("w1", "w2")),
        "w2.cpu_share_max",
    ],
}
# Figures that may rightly be zero (429s, RSS growth, a short run's steady state, events
# lost, a server's CPU over a short run, read in 10 ms ticks): present and finite, not
# necessarily positive.
NON_NEGATIVE = (
    "rate_limited",
    "rss_growth_mb",
    "utilization_steady",
    "server_cpu_s",
    "lost",
    "postgres_cpu_s",
    "redis_cpu_s",
)


# The rate-limited quota, range and events mostly wait, so they run beside the CPU-bound
# others, one run per core (91 s one after the other, ~60 s so; no figure is judged by its value
# here). Export runs alone first: it subtracts a one-meeting export's CPU from a large
# one's, and at quick sizes that difference is small enough for a neighbour's noise to
# swallow (benchmarks/bench_export.py then fails the run).
ALONE = ("export",)
SIDE_BY_SIDE = (
    ("quota", "range", "events"),
    ("decode", "coldstart", "emulator", "memory", "throughput", "database"),
)


def _start(names: list[str], where: Path) -> subprocess.Popen[bytes]:
    where.mkdir()
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(where)]
    for name in names:
        cmd += ["--only", name]
    with (where / "stderr.txt").open("w") as err:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)


def _finish(proc: subprocess.Popen[bytes], where: Path) -> dict[str, Any]:
    proc.wait(timeout=900)
    assert proc.returncode == 0, (where / "stderr.txt").read_text()[-2000:]
    assert (where / "RESULTS.md").read_text().startswith("# Benchmark results")
    doc: dict[str, Any] = json.loads((where / "results.json").read_text())
    return doc


def _run(names: list[str], out: Path) -> dict[str, Any]:
    known = {n for group in (ALONE, *SIDE_BY_SIDE) for n in group}
    stages = [[[n for n in ALONE if n in names]]]
    stages.append([[n for n in group if n in names] for group in SIDE_BY_SIDE])
    stages[-1].append([n for n in names if n not in known])
    docs = []
    for s, stage in enumerate(stages):
        runs = [
            (out / f"{s}-{g}", _start(group, out / f"{s}-{g}"))
            for g, group in enumerate(stage)
            if group
        ]
        docs += [_finish(proc, where) for where, proc in runs]
    doc = docs[0]
    for other in docs[1:]:
        doc["benchmarks"].update(other["benchmarks"])
    return doc


def _selected(session: pytest.Session) -> list[str]:
    """The benchmarks whose test this session runs (``-k range``: just that one); all of
    them when only the machine facts are asked for."""
    names = {
        item.callspec.params["name"]
        for item in session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_benchmark_produces_its_figures"
    }
    return sorted(names) or sorted(EXPECTED)


@pytest.fixture(scope="module")
def quick_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    return _run(_selected(request.session), tmp_path_factory.mktemp("bench"))


def test_machine_facts_are_recorded(quick_results: dict[str, Any]) -> None:
    machine = quick_results["machine"]
    assert machine["cpu_model"]
    assert machine["cores"] >= 1
    assert machine["python"].startswith("CPython") or machine["python"]
    for pkg in ("feishu-vc-async", "aiohttp", "msgspec", "lark-oapi"):
        assert machine["packages"][pkg] != "not installed"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_benchmark_produces_its_figures(
    quick_results: dict[str, Any], name: str, request: pytest.FixtureRequest
) -> None:
    if name in ("database", "workers"):
        request.getfixturevalue("postgres_url")  # skips without one, unless CI requires it
    if name == "workers":
        request.getfixturevalue("redis_url")
    bench = quick_results["benchmarks"][name]
    assert bench["status"] == "ok", bench["notes"]
    figures = {f["key"]: f["stat"] for f in bench["figures"]}
    for key in EXPECTED[name]:
        assert key in figures, f"{name}: figure {key} missing"
    for key, stat in figures.items():
        for part in ("median", "min", "max"):
            assert math.isfinite(stat[part]), (key, part)
            if key.rsplit(".", 1)[-1] in NON_NEGATIVE:
                assert stat[part] >= 0, (key, part)
            else:
                assert stat[part] > 0, (key, part)
        assert stat["min"] <= stat["median"] <= stat["max"]
    for ratio in bench["ratios"]:
        assert math.isfinite(ratio["value"])
        assert ratio["value"] > 0
