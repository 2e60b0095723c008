"""An aiohttp.web backend that awaits one meeting's participants per request.

One VCClient for the whole app: created when the app starts (``cleanup_ctx``), closed
when it stops, so every request reuses its connection pool, its cached tenant token
and its rate limiter (100/min by default: requests over it wait, they never hit 429).

Run it against Feishu::

    FEISHU_APP_ID=cli_... FEISHU_APP_SECRET=... python examples/aiohttp_backend.py --port 8080
    curl 'http://127.0.0.1:8080/meetings/123456789/participants?start=1700000000&end=1700003600'

Without credentials it starts the embedded emulator, serves the app, asks itself for
one meeting, prints the answer and exits (that is what tests/test_examples.py runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from feishu_vc_async import (
    FEISHU_BASE_URL,
    AppCredentials,
    FeishuError,
    InvalidQueryError,
    Limits,
    MeetingQuery,
    NotFoundError,
    PermissionDeniedError,
    RateLimit,
    VCClient,
)

CLIENT = web.AppKey("vc_client", VCClient)


def make_app(
    *, base_url: str, app_id: str, app_secret: str, rate_limit: RateLimit | None = None
) -> web.Application:
    app = web.Application()

    async def vc_client(app: web.Application) -> AsyncIterator[None]:
        # Created inside the running loop (the limiter and session belong to it).
        async with VCClient(
            AppCredentials(app_id, app_secret),
            base_url=base_url,
            limits=Limits(participant_list=rate_limit or RateLimit()),
        ) as client:
            app[CLIENT] = client
            yield

    app.cleanup_ctx.append(vc_client)
    app.router.add_get("/meetings/{meeting_no}/participants", participants)
    return app


async def participants(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    try:
        query = MeetingQuery(
            meeting_no=request.match_info["meeting_no"],
            meeting_start_time=int(request.query["start"]),
            meeting_end_time=int(request.query["end"]),
        ).validate()
    except (KeyError, ValueError) as exc:  # InvalidQueryError is a ValueError
        detail = (
            str(exc)
            if isinstance(exc, InvalidQueryError)
            else "start and end must be unix seconds (?start=1700000000&end=1700003600)"
        )
        return web.json_response({"error": detail}, status=400)
    try:
        people = [p async for p in client.participants(query)]
    except NotFoundError:
        return web.json_response({"error": "no such meeting"}, status=404)
    except PermissionDeniedError as exc:
        return web.json_response({"error": "no permission", "log_id": exc.log_id}, status=403)
    except FeishuError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    body = msgspec.json.encode({"meeting_no": query.meeting_no, "participants": people})
    return web.Response(body=body, content_type="application/json")


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}"


async def self_check() -> int:
    """No credentials: serve the app against the emulator and call it once."""
    from feishu_vc_async.emulator import Emulator

    async with Emulator(meetings=5, seed=1) as emu:
        app = make_app(base_url=emu.base_url, app_id=emu.app_id, app_secret=emu.app_secret)
        runner, url = await serve(app, "127.0.0.1", 0)
        try:
            meeting = emu.meetings[0]
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{url}/meetings/{meeting.meeting_no}/participants",
                    params={
                        "start": str(meeting.meeting_start_time),
                        "end": str(meeting.meeting_end_time),
                    },
                ) as resp,
            ):
                body: dict[str, Any] = await resp.json()
        finally:
            await runner.cleanup()
        got = len(body["participants"])
        want = len(emu.participants(meeting))
        print(f"GET /meetings/{meeting.meeting_no}/participants → {resp.status}, {got} people")
        print(f"emulator ground truth: {want} people → {'OK' if got == want else 'MISMATCH'}")
        return 0 if resp.status == 200 and got == want else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    app_id, secret = os.environ.get("FEISHU_APP_ID"), os.environ.get("FEISHU_APP_SECRET")
    if not (app_id and secret):
        print("FEISHU_APP_ID / FEISHU_APP_SECRET not set: self-check against the emulator")
        return asyncio.run(self_check())
    base_url = os.environ.get("FEISHU_BASE_URL", FEISHU_BASE_URL)
    web.run_app(
        make_app(base_url=base_url, app_id=app_id, app_secret=secret),
        host=args.host,
        port=args.port,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
