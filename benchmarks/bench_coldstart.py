"""Cold start: from creating the client to holding the first participant, tenant token
fetch included; the SDK's equivalent beside it. Plus the import time of each library.

Every run uses a new app of the emulator, so neither side finds a cached token (the
SDK caches tokens process-wide by app id). The emulator runs in its own process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.models import MeetingQuery

from ._emulator_proc import EmulatorProcess
from ._harness import BenchResult, Config, Stat
from ._peers import require_client, sdk_client, sdk_request

NAME = "coldstart"
TITLE = "6. Cold start to the first participant"


async def _ours(base_url: str, app_id: str, secret: str, query: MeetingQuery) -> float:
    from feishu_vc_async.client import VCClient

    t0 = time.perf_counter()
    async with VCClient(
        AppCredentials(app_id, secret),
        base_url=base_url,
        limits=Limits(participant_list=None),
    ) as client:
        async for _first in client.participants(query):
            elapsed = time.perf_counter() - t0
            break
        else:
            raise RuntimeError("no participant")
    return elapsed


async def _sdk(base_url: str, app_id: str, secret: str, query: MeetingQuery) -> float:
    t0 = time.perf_counter()
    client = sdk_client(base_url, app_id, secret)
    resp = await client.vc.v1.participant_list.aget(sdk_request(query, None))
    if not resp.success() or not resp.data.participants:
        raise RuntimeError(f"SDK: {resp.code} {resp.msg}")
    _first = resp.data.participants[0]
    return time.perf_counter() - t0


def _import_time(module: str) -> float:
    """Seconds to import ``module`` in a fresh interpreter (what a CLI or a worker pays)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def run(cfg: Config) -> BenchResult:
    require_client()
    import lark_oapi  # noqa: F401  (imported once, outside the timed part)

    res = BenchResult(NAME, TITLE)
    repeats = cfg.pick(5, 1)
    res.params = {"repeats": repeats, "emulator_latency_ms": 0}
    ours: list[float] = []
    sdk: list[float] = []
    with EmulatorProcess(meetings=20, seed=3) as emu:
        query = next(m.query for m in emu.meetings if m.participants > 0)
        # Warm-up: code paths and the emulator's page cache, with throwaway apps.
        asyncio.run(_ours(emu.base_url, *emu.add_app(), query))
        asyncio.run(_sdk(emu.base_url, *emu.add_app(), query))
        for _ in range(repeats):
            ours.append(asyncio.run(_ours(emu.base_url, *emu.add_app(), query)))
            sdk.append(asyncio.run(_sdk(emu.base_url, *emu.add_app(), query)))
    res.add(
        "ours_ms", "ours: VCClient() → first participant", Stat.of([x * 1e3 for x in ours], "ms")
    )
    res.add(
        "sdk_ms",
        "lark-oapi: Client.build() → first participant",
        Stat.of([x * 1e3 for x in sdk], "ms"),
    )
    res.ratio(
        "cold_ratio",
        "Cold start to first participant: SDK / ours",
        "ours_ms",
        "sdk_ms",
        headline=True,
        goal_text="informative",
    )
    imports = cfg.pick(3, 1)
    res.add(
        "import_ours_ms",
        "import feishu_vc_async.client (fresh interpreter)",
        Stat.of([_import_time("feishu_vc_async.client") * 1e3 for _ in range(imports)], "ms"),
    )
    res.add(
        "import_sdk_ms",
        "import lark_oapi (fresh interpreter)",
        Stat.of([_import_time("lark_oapi") * 1e3 for _ in range(imports)], "ms"),
    )
    res.ratio("import_ratio", "Import time: SDK / ours", "import_ours_ms", "import_sdk_ms")
    res.notes.append(
        "Each run uses a new emulator app, so the token is fetched in every run by both "
        "sides; the SDK fetches it with blocking `requests` inside `aget`."
    )
    return res
