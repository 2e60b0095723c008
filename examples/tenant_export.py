"""Every participant of a date range, for one tenant of a store app, from Python.

``export(client.for_tenant(key), job)`` is what ``feishu-vc export`` runs: the meetings of
the range are found through meeting_list while their participants are fetched, each API
within that tenant's own budget, into a file whose checkpoint makes the export exact
after any crash (run it again with ``mode="resume"``: nothing lost, nothing twice).

Against Feishu (the ticket is what the platform last pushed to your app's event
endpoint; see the README's "store apps")::

    FEISHU_APP_ID=cli_... FEISHU_APP_SECRET=... FEISHU_APP_TICKET=... \\
        python examples/tenant_export.py --tenant-key KEY --since 2026-11-01 --until 2026-11-30

Without credentials it exports one tenant of a store app of the embedded emulator and
checks the file against the emulator's data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from feishu_vc_async import (
    FEISHU_BASE_URL,
    Limits,
    MeetingListQuery,
    MeetingStatus,
    RateLimit,
    StoreAppTokenProvider,
    VCClient,
)
from feishu_vc_async.auth import MemoryTicketStore
from feishu_vc_async.export import ExportJob, ExportRun, MeetingRange, export, file_output


async def export_tenant(
    *,
    base_url: str,
    app_id: str,
    app_secret: str,
    app_ticket: str,
    tenant_key: str,
    since: int,
    until: int,
    out: Path,
    limit: RateLimit | None = None,
) -> ExportRun:
    """Export the tenant's meetings of ``since``..``until`` (unix seconds) to ``out``,
    continuing an earlier run of the same export if there is one."""
    tickets = MemoryTicketStore()
    await tickets.put(app_ticket)
    provider = StoreAppTokenProvider(app_id, app_secret, tickets)
    rate = limit or RateLimit()  # the platform's 100 per minute, per API and tenant
    query = MeetingListQuery(start_time=since, end_time=until, include_webinar=True)
    job = ExportJob(MeetingRange(query), file_output(out), mode="resume")
    async with VCClient(
        provider, base_url=base_url, limits=Limits(participant_list=rate, meeting_list=rate)
    ) as client:
        run = await export(client.for_tenant(tenant_key), job)
    print(
        f"tenant {tenant_key}: {run.meetings_done}/{run.ledger.known} meetings, "
        f"{run.ledger.rows_total} participants → {out}"
    )
    for failure in run.unexported:
        print(f"  {failure.meeting_no}: {failure.message} (log_id {failure.log_id})")
    return run


def read_rows(path: Path) -> list[dict[str, object]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


async def self_check(out: Path) -> int:
    from feishu_vc_async.emulator import Emulator

    fast = RateLimit(100, 1.0)  # the emulator's limits are scaled; Feishu allows 100/min
    async with Emulator(meetings=30, seed=5, rate_limit=fast, meeting_list_rate_limit=fast) as emu:
        app = emu.add_store_app(tenants=2)
        tenant = app.tenant_keys[1]
        truth = emu.tenant(tenant)
        since = min(q.meeting_start_time for q in truth.meetings)
        until = int(datetime.now(UTC).timestamp())
        run = await export_tenant(
            base_url=emu.base_url,
            app_id=app.app_id,
            app_secret=app.app_secret,
            app_ticket=emu.app_ticket(app.app_id),
            tenant_key=tenant,
            since=since,
            until=until,
            out=out,
            limit=fast,
        )
        # What meeting_list lists by default: the tenant's own ended meetings (not
        # external ones), webinars asked for, every start in the range.
        listed = [
            q
            for q in truth.meetings
            if q.meeting_status == MeetingStatus.ENDED and not truth.meeting_info(q).external
        ]
        want = sorted(
            (q.meeting_no, q.meeting_start_time, p.participant_name)
            for q in listed
            for p in truth.participants(q)
        )
    got = sorted(
        (r["meeting_no"], r["meeting_start_time"], r["participant_name"]) for r in read_rows(out)
    )
    ok = run.complete and got == want
    verdict = "OK" if ok else f"MISMATCH ({len(got)} rows, {len(want)} expected)"
    print(f"emulator ground truth: {len(want)} rows of tenant {tenant} → {verdict}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant-key", help="the tenant to export (a store app's)")
    parser.add_argument("--since", help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--until", help="last day, YYYY-MM-DD (UTC)")
    parser.add_argument("--out", default="tenant-participants.jsonl", help="output file")
    args = parser.parse_args()
    out = Path(args.out)
    app_id = os.environ.get("FEISHU_APP_ID")
    if not app_id:
        return asyncio.run(self_check(out))
    if not (args.tenant_key and args.since and args.until):
        parser.error("--tenant-key, --since and --until are required against Feishu")

    def day(text: str, end: bool) -> int:
        start = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        return int(start.timestamp()) + (86_399 if end else 0)

    run = asyncio.run(
        export_tenant(
            base_url=os.environ.get("FEISHU_BASE_URL", FEISHU_BASE_URL),
            app_id=app_id,
            app_secret=os.environ["FEISHU_APP_SECRET"],
            app_ticket=os.environ["FEISHU_APP_TICKET"],
            tenant_key=args.tenant_key,
            since=day(args.since, end=False),
            until=day(args.until, end=True),
            out=out,
        )
    )
    return 0 if run.complete else 1


if __name__ == "__main__":
    sys.exit(main())
