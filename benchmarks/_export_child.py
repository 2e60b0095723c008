"""One export through the library's API, as an application calls it, in a process of its
own (``bench_database`` runs it under ``benchmarks._rss_wrap`` for its peak RSS)::

    python -m benchmarks._export_child --meetings FILE --out OUT --base-url URL [--schema S]

``OUT`` is a file (``.jsonl``...) or a database URL (``postgresql://``, ``sqlite:///``);
the app's credentials come from ``FEISHU_APP_ID`` and ``FEISHU_APP_SECRET``. It runs
``export(client, ExportJob(load_meetings(FILE), output))`` with the job's defaults and an
unpaced client (the emulator has no gateway here), prints the rows written, and exits 1
unless every meeting was exported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.client import VCClient
from feishu_vc_async.export import (
    ExportJob,
    Output,
    database_output,
    export,
    file_output,
    is_database_url,
    load_meetings,
)


async def _export(meetings: Path, output: Output, base_url: str) -> int:
    credentials = AppCredentials(os.environ["FEISHU_APP_ID"], os.environ["FEISHU_APP_SECRET"])
    async with VCClient(credentials, base_url=base_url, limits=Limits.unlimited()) as client:
        run = await export(client, ExportJob(load_meetings(meetings), output))
    if not run.complete:
        raise SystemExit(f"the export did not finish: {run.failures or run.fatal}")
    return run.ledger.rows_this_run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._export_child")
    parser.add_argument("--meetings", type=Path, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--schema")
    args = parser.parse_args()
    output: Output = (
        database_output(args.out, schema=args.schema)
        if is_database_url(args.out)
        else file_output(args.out)
    )
    print(asyncio.run(_export(args.meetings, output, args.base_url)))


if __name__ == "__main__":
    main()
