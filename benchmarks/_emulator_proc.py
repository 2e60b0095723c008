"""The emulator in its own process, so a client's CPU time is the client's alone and
the SDK's blocking token fetch cannot stall the server it waits for.

Child: ``python -m benchmarks._emulator_proc --meetings N [--latency S] [--rate 100/2s]
[--meeting-list-rate 100/2s] [--anchor UNIX]`` prints one JSON line ``{"base_url",
"app_id", "app_secret", "meetings": [...]}`` and then answers commands, one per stdin
line, with one JSON line each: ``stats`` (requests seen, by HTTP status, and the CPU
seconds of the emulator process), ``add_app`` (a new app id and secret), ``log APP_ID``
(arrival time and status of that app's VC API requests), ``requests APP_ID`` (arrival
time, API and status of each of that app's requests, token requests included),
``listed START END WEBINARS EXTERNAL`` (what meeting_list lists for that range, each
meeting with its participant count and a fingerprint of its rows: see
:func:`row_fingerprint`), ``store_app TENANTS MEETINGS START END`` (a new store app
installed by that many tenants of that many meetings each: its credentials, tenant
keys, app_ticket, and what each tenant's meeting_list lists for that range: meetings,
rows, pages of 100), ``count APP_ID [SINCE]`` (that app's requests that arrived from
SINCE on, monotonic: answered by API, the participant_list ones' first and last
arrival, and the emulator's CPU seconds),
``reset`` (clears the request log). It exits when stdin closes.

Parent: ``with EmulatorProcess(meetings=...) as emu:`` gives the same facts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from feishu_vc_async.models import MeetingQuery, MeetingStatus

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class MeetingFacts:
    query: MeetingQuery
    participants: int


@dataclass(frozen=True)
class ListedFacts:
    """One meeting as meeting_list lists it, with the ground truth of its rows."""

    meeting_no: str
    start: int
    end: int
    listed_participants: int  # number_of_participants, as meeting_list says
    rows: int  # what participant_list returns over all pages
    fingerprint: int  # row_fingerprint of those rows

    @property
    def key(self) -> str:
        return f"{self.meeting_no}@{self.start}"


@dataclass(frozen=True)
class TenantFacts:
    """One store-app tenant's window as meeting_list lists it: meetings, their rows, and
    the participant_list pages of 100 they take (at least one a meeting)."""

    meetings: int
    rows: int
    pages: int


@dataclass(frozen=True)
class StoreAppFacts:
    app_id: str
    app_secret: str
    app_ticket: str
    tenants: dict[str, TenantFacts]  # by tenant key, in the order the app lists them


@dataclass(frozen=True)
class RequestFacts:
    """One request as the emulator saw it: arrival (monotonic), which API, HTTP status."""

    time: float
    api: str  # "participant_list", "meeting_list" or "token"
    status: int


# What identifies one participant row, for every side (our JSONL rows, the SDK's objects,
# the emulator's ground truth): together these differ between any two rows of a meeting.
IDENTITY_FIELDS = (
    "participant_name",
    "user_id",
    "meeting_room_id",
    "device",
    "public_ip",
    "join_time",
    "leave_time",
)
_MASK = (1 << 64) - 1


def row_hash(values: Iterable[object]) -> int:
    """A 64-bit hash of one row's identity fields (``None`` and "" alike)."""
    text = json.dumps(["" if v is None else v for v in values], ensure_ascii=False)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def row_fingerprint(hashes: Iterable[int]) -> int:
    """A multiset fingerprint: the sum of the rows' hashes mod 2**64. A row missing, a row
    twice or a row changed each move it (but for a chance of 2**-64)."""
    total = 0
    for h in hashes:
        total = (total + h) & _MASK
    return total


class EmulatorProcess:
    """Start the emulator child, read its address and meetings, stop it on exit."""

    def __init__(
        self,
        *,
        meetings: int = 50,
        seed: int = 7,
        latency: float = 0.0,
        rate: str | None = None,
        meeting_list_rate: str | None = None,
        anchor: int | None = None,
        window: str = "sliding",
        list_meetings: int | None = None,
        webinars: int | None = None,
        webinar_size: int | None = None,
        counts: bool = True,
    ) -> None:
        self.args = ["--meetings", str(meetings), "--seed", str(seed), "--latency", str(latency)]
        self.args += ["--window", window]
        if rate is not None:
            self.args += ["--rate", rate]
        if meeting_list_rate is not None:
            self.args += ["--meeting-list-rate", meeting_list_rate]
        if anchor is not None:
            self.args += ["--anchor", str(anchor)]
        if list_meetings is not None:
            self.args += ["--list-meetings", str(list_meetings)]
        if webinars is not None:
            self.args += ["--webinars", str(webinars)]
        if webinar_size is not None:
            self.args += ["--webinar-size", str(webinar_size)]
        if not counts:
            self.args.append("--no-counts")
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.app_id = ""
        self.app_secret = ""
        self.meetings: list[MeetingFacts] = []

    def __enter__(self) -> EmulatorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._emulator_proc", *self.args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"emulator process exited {self.proc.returncode} before starting")
        info = json.loads(line)
        self.base_url = info["base_url"]
        self.app_id = info["app_id"]
        self.app_secret = info["app_secret"]
        self.meetings = [
            MeetingFacts(
                MeetingQuery(
                    meeting_no=m["meeting_no"],
                    meeting_start_time=m["start"],
                    meeting_end_time=m["end"],
                ),
                m["participants"],
            )
            for m in info["meetings"]
        ]
        return self

    def command(self, cmd: str) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    def add_app(self) -> tuple[str, str]:
        """A new app (id, secret): no client has a token of it cached yet."""
        answer = self.command("add_app")
        return str(answer["app_id"]), str(answer["app_secret"])

    def log(self, app_id: str) -> list[tuple[float, int]]:
        """(arrival time, HTTP status) of each participant_list request of ``app_id``."""
        return [(float(t), int(s)) for t, s in self.command(f"log {app_id}")["records"]]

    def requests(self, app_id: str) -> list[RequestFacts]:
        """Every request of ``app_id`` (token requests too), in the order answered."""
        return [
            RequestFacts(float(t), str(api), int(status))
            for t, api, status in self.command(f"requests {app_id}")["records"]
        ]

    def listed(self, start: int, end: int, *, webinars: bool, external: bool) -> list[ListedFacts]:
        """What meeting_list lists for ``start..end`` (ended meetings), in page order,
        with each meeting's rows as participant_list returns them (count, fingerprint)."""
        answer = self.command(f"listed {start} {end} {int(webinars)} {int(external)}")
        return [ListedFacts(**m) for m in answer["meetings"]]

    def store_app(self, tenants: int, meetings: int, start: int, end: int) -> StoreAppFacts:
        """A new store app installed by ``tenants`` tenants of ``meetings`` meetings each,
        with the ground truth of each tenant's ``start..end`` (ended meetings, as
        meeting_list lists them: no webinars, no external meetings). Every listed
        meeting's rows are generated here, before any client asks."""
        answer = self.command(f"store_app {tenants} {meetings} {start} {end}")
        return StoreAppFacts(
            app_id=str(answer["app_id"]),
            app_secret=str(answer["app_secret"]),
            app_ticket=str(answer["app_ticket"]),
            tenants={str(k): TenantFacts(**v) for k, v in answer["tenants"].items()},
        )

    def count(self, app_id: str, since: float = 0.0) -> dict[str, Any]:
        """``app_id``'s requests that arrived from ``since`` on (``time.monotonic()``, the
        emulator's clock; default: since the last :meth:`reset`): ``participant_list``,
        ``meeting_list`` and ``token`` (answered 200), ``rate_limited`` (429),
        ``errors`` (any other status), ``first`` and ``last`` (arrival, monotonic, of
        its participant_list requests; None without any), and ``cpu_s`` (the emulator
        process's CPU so far)."""
        return self.command(f"count {app_id} {since!r}")

    def reset(self) -> None:
        self.command("reset")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def _serve(args: argparse.Namespace) -> None:
    from feishu_vc_async.emulator import DefaultApp, Emulator, MeetingData
    from feishu_vc_async.ratelimit import RateLimit

    rate = RateLimit.parse(args.rate) if args.rate else None
    # Not given: the emulator's default (the platform's 100 per 60 s); "none": no gateway.
    listing: dict[str, Any] = {}
    if args.meeting_list_rate is not None:
        text = args.meeting_list_rate
        listing["meeting_list_rate_limit"] = (
            None if text.lower() == "none" else RateLimit.parse(text)
        )
    async with Emulator(
        meetings=args.meetings,
        seed=args.seed,
        rate_limit=rate,
        **listing,
        window=args.window,
        latency=args.latency,
        data=MeetingData(
            webinars=args.webinars, webinar_size=args.webinar_size, anchor=args.anchor
        ),
        # A fresh app per emulator: the SDK caches tenant tokens process-wide by app id,
        # and a token of an earlier emulator would be refused by this one.
        app=DefaultApp(app_id=f"cli_{secrets.token_hex(8)}"),
    ) as emu:
        listed = emu.meetings if args.list_meetings is None else emu.meetings[: args.list_meetings]
        info = {
            "base_url": emu.base_url,
            "app_id": emu.app_id,
            "app_secret": emu.app_secret,
            "meetings": [
                {
                    "meeting_no": q.meeting_no,
                    "start": q.meeting_start_time,
                    "end": q.meeting_end_time,
                    # Counting generates every row: skipped for large sets (-1).
                    "participants": len(emu.participants(q)) if args.counts else -1,
                }
                for q in listed
            ],
        }
        print(json.dumps(info), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            cmd, _, arg = line.strip().partition(" ")
            answer: dict[str, Any]
            if cmd == "log":
                # Arrival time (monotonic) and status of each participant_list request of
                # one app: the gateway admits or refuses at arrival.
                answer = {
                    "records": [
                        [r.time, r.status]
                        for r in emu.requests
                        if not r.token_request and r.app_id == arg
                    ]
                }
            elif cmd == "requests":
                answer = {
                    "records": [
                        [r.time, _api_name(r.path, r.token_request), r.status]
                        for r in emu.requests
                        if r.app_id == arg
                    ]
                }
            elif cmd == "listed":
                answer = {"meetings": _listed(emu, *(int(x) for x in arg.split()))}
            elif cmd == "stats":
                statuses = Counter(str(r.status) for r in emu.requests)
                answer = {
                    "requests": len(emu.requests),
                    "by_status": dict(statuses),
                    "cpu_s": time.process_time(),
                }
            elif cmd == "add_app":
                app_id, app_secret = emu.add_app()
                answer = {"app_id": app_id, "app_secret": app_secret}
            elif cmd == "store_app":
                answer = _store_app(emu, *(int(x) for x in arg.split()))
            elif cmd == "count":
                app_id, _, since = arg.partition(" ")
                answer = _count(emu, app_id, float(since or 0))
            elif cmd == "reset":
                emu.reset_log()
                answer = {"ok": True}
            else:
                answer = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(answer), flush=True)


def _api_name(path: str, token_request: bool) -> str:
    if token_request:
        return "token"
    return path.rstrip("/").rsplit("/", 1)[-1]


def _listed(emu: Any, start: int, end: int, webinars: int, external: int) -> list[dict[str, Any]]:
    """meeting_list's ground truth for a range, each meeting with its rows' fingerprint."""
    out: list[dict[str, Any]] = []
    for meeting in emu.listed_meetings(
        start, end, include_webinar=bool(webinars), include_external=bool(external)
    ):
        query = meeting.query()
        rows = emu.participants(query)
        out.append(
            {
                "meeting_no": query.meeting_no,
                "start": query.meeting_start_time,
                "end": query.meeting_end_time,
                "listed_participants": meeting.participant_count or 0,
                "rows": len(rows),
                "fingerprint": row_fingerprint(
                    row_hash(getattr(p, f) for f in IDENTITY_FIELDS) for p in rows
                ),
            }
        )
    return out


def _store_app(emu: Any, tenants: int, meetings: int, start: int, end: int) -> dict[str, Any]:
    """A store app of ``tenants`` tenants and each tenant's ground truth of ``start..end``:
    the ended meetings that start in it (meeting_list's default rule), neither webinars
    nor external (its default filters); their rows generated now."""
    app = emu.add_store_app(tenants=tenants, meetings=meetings)
    truth: dict[str, dict[str, int]] = {}
    for key in app.tenant_keys:
        view = emu.tenant(key)
        listed = rows = pages = 0
        for query in view.meetings:
            info = view.meeting_info(query)
            if info.webinar or info.external or query.meeting_status == MeetingStatus.ONGOING:
                continue
            if not start <= query.meeting_start_time <= end:
                continue
            n = len(view.participants(query))
            listed += 1
            rows += n
            pages += max(1, -(-n // 100))
        truth[key] = {"meetings": listed, "rows": rows, "pages": pages}
    return {
        "app_id": app.app_id,
        "app_secret": app.app_secret,
        "app_ticket": emu.app_ticket(app.app_id),
        "tenants": truth,
    }


def _count(emu: Any, app_id: str, since: float) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    first = last = None
    for r in emu.requests:
        if r.app_id != app_id or r.time < since:
            continue
        api = _api_name(r.path, r.token_request)
        if r.status == 200:
            counts[api] += 1
            if api == "participant_list":
                first = r.time if first is None else min(first, r.time)
                last = r.time if last is None else max(last, r.time)
        elif r.status == 429:
            counts["rate_limited"] += 1
        else:
            counts["errors"] += 1
    return {
        "participant_list": counts["participant_list"],
        "meeting_list": counts["meeting_list"],
        "token": counts["token"],
        "rate_limited": counts["rate_limited"],
        "errors": counts["errors"],
        "first": first,
        "last": last,
        "cpu_s": time.process_time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meetings", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate", default=None, help="gateway limit such as 100/2s; none = off")
    parser.add_argument(
        "--meeting-list-rate",
        default=None,
        help="meeting_list's gateway limit such as 100/2s, or none (default: the emulator's)",
    )
    parser.add_argument("--anchor", type=int, default=None, help="unix time meetings end before")
    parser.add_argument("--window", default="sliding")
    parser.add_argument("--list-meetings", type=int, default=None)
    parser.add_argument("--webinars", type=int, default=None)
    parser.add_argument("--webinar-size", type=int, default=3000)
    parser.add_argument("--no-counts", dest="counts", action="store_false")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
