"""The emulator's own capacity: full pages (100 participants) per second served to plain
aiohttp clients, so a reader can see it is not what limits the client figures.

The emulator runs in its own process (as in every client benchmark); the load comes
from one aiohttp session with ``width`` workers requesting the first page of large
meetings again and again for a fixed time. The emulator's CPU use over that time says
whether it was saturated.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH, TENANT_TOKEN_PATH

from ._emulator_proc import EmulatorProcess
from ._harness import BenchResult, Check, Config, Stat

NAME = "emulator"
TITLE = "5. Emulator capacity"


async def _load(
    emu: EmulatorProcess, params: list[dict[str, str]], width: int, seconds: float
) -> tuple[int, float]:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=width), base_url=emu.base_url
    ) as session:
        async with session.post(
            TENANT_TOKEN_PATH, json={"app_id": emu.app_id, "app_secret": emu.app_secret}
        ) as resp:
            token = (await resp.json())["tenant_access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        pages = 0
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal pages
            i = offset
            while time.perf_counter() < deadline:
                async with session.get(
                    PARTICIPANT_LIST_PATH, params=params[i % len(params)], headers=headers
                ) as resp:
                    body = await resp.read()
                    if resp.status != 200 or b'"code":0' not in body:
                        raise RuntimeError(f"emulator answered {resp.status}: {body[:200]!r}")
                pages += 1
                i += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(width)))
        return pages, time.perf_counter() - t0


def run(cfg: Config) -> BenchResult:
    res = BenchResult(NAME, TITLE)
    width = 32
    seconds = cfg.pick(2.0, 0.5)
    res.params = {"width": width, "seconds_per_run": seconds, "repeats": cfg.repeats}
    pps: list[float] = []
    emu_cpu: list[float] = []
    with EmulatorProcess(meetings=200, seed=5) as emu:
        big = [m for m in emu.meetings if m.participants >= 100]
        if not big:
            raise RuntimeError("the emulator generated no meeting of 100+ participants")
        params = []
        for m in big:
            p = m.query.to_params()
            p["page_size"] = "100"
            params.append(p)
        asyncio.run(_load(emu, params, width, seconds / 2))  # warm-up: caches, pages
        for _ in range(cfg.repeats):
            cpu0 = emu.stats()["cpu_s"]
            pages, wall = asyncio.run(_load(emu, params, width, seconds))
            cpu1 = emu.stats()["cpu_s"]
            pps.append(pages / wall)
            emu_cpu.append((cpu1 - cpu0) / wall)
    res.params["large_meetings"] = len(big)
    res.add("pages_per_s", "emulator: 100-participant pages/s", Stat.of(pps, "pages/s"), "higher")
    res.add(
        "emulator_cpu_share",
        "emulator process CPU while serving (1.0 = one core busy)",
        Stat.of(emu_cpu, "cores"),
    )
    res.checks.append(
        Check(
            "capacity",
            "Emulator capacity (100-participant pages, plain aiohttp, 32 workers)",
            f"{res.figure('pages_per_s').stat.median:,.0f} pages/s",
            "informative: above what the client figures need",
            None,
            headline=True,
        )
    )
    res.notes.append(
        "Load: one aiohttp session, "
        f"{width} workers, first page (page_size=100) of the {len(big)} meetings with "
        "100+ participants, round robin. On 2 cores the load generator competes with the "
        "emulator for CPU, so this is a floor of the emulator's capacity."
    )
    return res
