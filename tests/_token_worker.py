"""One worker process of the shared-token tests (not a test module).

Run as ``python tests/_token_worker.py '<json config>'``. It opens one VCClient whose
tenant tokens are shared through Redis (``SharedTokens(redis_url, prefix=prefix)``): a
custom app's (``app_id``, ``app_secret``) or, with ``"ticket"``, a store app's tenants
``tenants`` (a view per tenant). It prints ``ready``; then for each ``go`` line on stdin
it asks every tenant for one page of each of its ``queries`` at once and prints one
JSON line (``{"pages": n}``); ``quit`` (or the end of stdin) ends it. The library's log
goes to stderr at INFO.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import msgspec

from feishu_vc_async import AppCredentials, Limits, VCClient
from feishu_vc_async.auth import SharedTokens, StaticTicket, StoreAppTokenProvider
from feishu_vc_async.models import MeetingQuery


async def main(config: dict[str, Any]) -> None:
    log = logging.getLogger("feishu_vc_async")
    log.addHandler(logging.StreamHandler(sys.stderr))
    log.setLevel(logging.INFO)
    shared = SharedTokens(str(config["redis_url"]), prefix=str(config["prefix"]))
    queries = msgspec.json.decode(
        str(config["queries"]).encode(), type=dict[str, list[MeetingQuery]]
    )
    app_id, secret = str(config["app_id"]), str(config["app_secret"])
    ticket = config.get("ticket")
    auth = (
        StoreAppTokenProvider(app_id, secret, StaticTicket(str(ticket)), shared=shared)
        if ticket
        else AppCredentials(app_id, secret, shared=shared)
    )
    loop = asyncio.get_running_loop()
    async with VCClient(
        auth, base_url=str(config["base_url"]), limits=Limits.unlimited()
    ) as client:
        views = {key: client.for_tenant(key) if ticket else client for key in queries}
        print("ready", flush=True)
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
            pages = await asyncio.gather(
                *(
                    views[key].participant_list(query, page_size=20)
                    for key, mine in queries.items()
                    for query in mine
                )
            )
            print(json.dumps({"pages": len(pages)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
