"""A FastAPI backend: one meeting's participants per request, as JSON or streamed NDJSON,
and the platform's meeting-ended events at a webhook (the twin of aiohttp_backend.py).

One VCClient for the whole app: created when the app starts (its ``lifespan``), closed
when it stops, so every request reuses its connection pool, its cached tenant token
and its rate limiter (100/min by default: requests over it wait, they never hit 429).

* ``GET /meetings/{meeting_no}/participants?start=&end=``: the participants as one JSON
  object. Bad input is 400 naming the field (no request is sent for it), no such
  meeting 404, no permission 403, any other platform error 502 with its code and log id.
* ``GET /meetings/{meeting_no}/participants.ndjson?start=&end=``: the same, one JSON
  object a line, streamed: each page's lines are sent before the next page is asked
  for. The first page is fetched before the answer starts, so its errors get the
  statuses above; an error on a later page (the status is sent by then) ends the
  stream with one ``{"error": ...}`` line.
* ``POST /feishu/events``: the event webhook (``WebhookReceiver.asgi_app``, mounted),
  configured from ``FEISHU_VERIFICATION_TOKEN`` and ``FEISHU_ENCRYPT_KEY``; each
  ``all_meeting_ended_v1`` is kept in memory and listed by ``GET /meetings/ended``.

Run it against Feishu (``pip install fastapi uvicorn``)::

    FEISHU_APP_ID=cli_... FEISHU_APP_SECRET=... FEISHU_VERIFICATION_TOKEN=... \\
        FEISHU_ENCRYPT_KEY=... python examples/fastapi_backend.py --port 8080
    curl 'http://127.0.0.1:8080/meetings/123456789/participants?start=1700000000&end=1700003600'
    curl -N 'http://127.0.0.1:8080/meetings/123456789/participants.ndjson?start=1700000000&end=1700003600'

Without credentials it starts the embedded emulator, serves the app, asks itself for
one meeting (JSON and NDJSON), pushes itself one signed meeting-ended event, prints the
answers and exits (that is what tests/test_examples.py runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

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
from feishu_vc_async.events import MeetingEnded, WebhookReceiver

# The webhook's request URL (given to the platform) is WEBHOOK_MOUNT + WEBHOOK_ROUTE.
WEBHOOK_MOUNT, WEBHOOK_ROUTE = "/feishu", "/events"
WEBHOOK_PATH = WEBHOOK_MOUNT + WEBHOOK_ROUTE
_ENCODER = msgspec.json.Encoder()


def make_app(
    *,
    base_url: str,
    app_id: str,
    app_secret: str,
    verification_token: str | None,
    encrypt_key: str | None,
    rate_limit: RateLimit | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Created inside the running loop (the limiter and session belong to it).
        async with VCClient(
            AppCredentials(app_id, app_secret),
            base_url=base_url,
            limits=Limits(participant_list=rate_limit or RateLimit()),
        ) as client:
            app.state.client = client
            yield

    app = FastAPI(lifespan=lifespan)
    # The meetings told ended, in memory for the example. A real app queues each one
    # durably here, before the push is acknowledged (e.g. ``EventSync.put`` of
    # feishu_vc_async.sync, which a sync then fetches once the meeting has settled):
    # if on_ended raises, the answer is 500 and the platform pushes the event again.
    ended: list[MeetingEnded] = []
    app.state.ended = ended

    async def on_ended(event: MeetingEnded) -> None:
        ended.append(event)

    receiver = WebhookReceiver(
        verification_token=verification_token, encrypt_key=encrypt_key, on_ended=on_ended
    )
    # Mounted one level up: a Mount at "/feishu/events" itself answers a POST to
    # "/feishu/events" (the URL the platform is given) with a 307 to ".../events/",
    # which the platform does not follow. The receiver answers 404 elsewhere under it.
    app.mount(WEBHOOK_MOUNT, receiver.asgi_app(WEBHOOK_ROUTE))

    app.add_exception_handler(RequestValidationError, _bad_input)
    app.add_exception_handler(FeishuError, _platform_error)
    app.add_api_route("/meetings/ended", ended_meetings, methods=["GET"])
    app.add_api_route("/meetings/{meeting_no}/participants", participants, methods=["GET"])
    app.add_api_route(
        "/meetings/{meeting_no}/participants.ndjson", participants_ndjson, methods=["GET"]
    )
    return app


def _query(meeting_no: str, start: int, end: int) -> MeetingQuery:
    # InvalidQueryError (a ValueError) names the field; answered 400 by _platform_error.
    return MeetingQuery(
        meeting_no=meeting_no, meeting_start_time=start, meeting_end_time=end
    ).validate()


async def participants(request: Request, meeting_no: str, start: int, end: int) -> Response:
    client: VCClient = request.app.state.client
    query = _query(meeting_no, start, end)
    people = [p async for p in client.participants(query)]
    body = _ENCODER.encode({"meeting_no": query.meeting_no, "participants": people})
    return Response(body, media_type="application/json")


async def participants_ndjson(
    request: Request, meeting_no: str, start: int, end: int
) -> StreamingResponse:
    client: VCClient = request.app.state.client
    pages = client.pages(_query(meeting_no, start, end))
    try:
        page = await anext(pages)  # its errors are still an HTTP status (the handlers)
    except BaseException:
        await pages.aclose()
        raise

    async def lines() -> AsyncIterator[bytes]:
        """Each page's participants as lines, sent before the next page is asked for."""
        nonlocal page
        async with pages:  # closed however the stream ends (the caller may hang up)
            while True:
                yield b"".join(_ENCODER.encode(p) + b"\n" for p in page.participants)
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    return
                except FeishuError as exc:  # the 200 is sent: say so on the last line
                    yield _ENCODER.encode(_error_body(exc)) + b"\n"
                    return

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def ended_meetings(request: Request) -> Response:
    ended: list[MeetingEnded] = request.app.state.ended
    return Response(_ENCODER.encode({"ended": ended}), media_type="application/json")


async def _bad_input(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a query parameter that is missing or not an integer, made the
    400 the aiohttp twin answers, naming the parameters."""
    assert isinstance(exc, RequestValidationError)
    fields = sorted({str(e["loc"][-1]) for e in exc.errors()})
    detail = f"{', '.join(fields)}: must be unix seconds (?start=1700000000&end=1700003600)"
    return JSONResponse({"error": detail}, status_code=400)


def _error_body(exc: FeishuError) -> dict[str, Any]:
    # Error texts are scrubbed by the library: never a token or the app secret.
    return {"error": str(exc), "code": exc.code, "log_id": exc.log_id}


async def _platform_error(request: Request, exc: Exception) -> JSONResponse:
    """The library's typed errors as HTTP statuses."""
    assert isinstance(exc, FeishuError)
    if isinstance(exc, InvalidQueryError):  # raised before any request was sent
        return JSONResponse({"error": str(exc)}, status_code=400)
    if isinstance(exc, NotFoundError):
        return JSONResponse({"error": "no such meeting", "log_id": exc.log_id}, status_code=404)
    if isinstance(exc, PermissionDeniedError):
        return JSONResponse({"error": "no permission", "log_id": exc.log_id}, status_code=403)
    return JSONResponse(_error_body(exc), status_code=502)


async def serve(
    app: FastAPI, host: str, port: int
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """``app`` under uvicorn in this loop (port 0: any free one); stop it with
    ``server.should_exit = True`` and await the task (the lifespan then closes)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, lifespan="on", log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn sets it once it listens; no event to await
        if task.done():  # it failed to start (the port taken, the lifespan raised)
            await task
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    return server, task, f"http://{bound[0]}:{bound[1]}"


async def self_check() -> int:
    """No credentials: serve the app against the emulator and call it."""
    from feishu_vc_async.emulator import Emulator
    from feishu_vc_async.events import (
        NONCE_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        encrypt,
        ended_envelope,
        signature,
    )

    token, key = secrets.token_hex(8), secrets.token_hex(16)
    async with Emulator(meetings=5, seed=1) as emu:
        app = make_app(
            base_url=emu.base_url,
            app_id=emu.app_id,
            app_secret=emu.app_secret,
            verification_token=token,
            encrypt_key=key,
        )
        server, task, url = await serve(app, "127.0.0.1", 0)
        meeting = emu.meetings[0]
        params = {"start": str(meeting.meeting_start_time), "end": str(meeting.meeting_end_time)}
        path = f"/meetings/{meeting.meeting_no}/participants"
        event = MeetingEnded(
            event_id=secrets.token_hex(16),
            tenant_key=emu.tenant_key,
            app_id=emu.app_id,
            meeting_id="7000000000000000001",
            meeting_no=meeting.meeting_no,
            start_time=meeting.meeting_start_time,
            end_time=meeting.meeting_end_time,
        )
        body = _ENCODER.encode({"encrypt": encrypt(key, ended_envelope(event, token=token))})
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        headers = {
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: signature(timestamp, nonce, key, body),
            "Content-Type": "application/json",
        }
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(url + path, params=params) as resp:
                    status, doc = resp.status, await resp.json()
                async with http.get(url + path + ".ndjson", params=params) as resp:
                    lines = (await resp.read()).splitlines()
                async with http.post(url + WEBHOOK_PATH, data=body, headers=headers) as resp:
                    pushed = resp.status
                async with http.get(url + "/meetings/ended") as resp:
                    told = (await resp.json())["ended"]
        finally:
            server.should_exit = True
            await task
    got, streamed, want = len(doc["participants"]), len(lines), len(emu.participants(meeting))
    told_ok = [e["meeting_no"] for e in told] == [meeting.meeting_no]
    ok = status == pushed == 200 and got == streamed == want and told_ok
    print(f"GET {path} → {status}, {got} people; .ndjson → {streamed} lines")
    print(f"POST {WEBHOOK_PATH} (signed meeting-ended event) → {pushed}; ended: {len(told)}")
    print(f"emulator ground truth: {want} people → {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    app_id, secret = os.environ.get("FEISHU_APP_ID"), os.environ.get("FEISHU_APP_SECRET")
    if not (app_id and secret):
        print("FEISHU_APP_ID / FEISHU_APP_SECRET not set: self-check against the emulator")
        return asyncio.run(self_check())
    app = make_app(
        base_url=os.environ.get("FEISHU_BASE_URL", FEISHU_BASE_URL),
        app_id=app_id,
        app_secret=secret,
        verification_token=os.environ.get("FEISHU_VERIFICATION_TOKEN") or None,
        encrypt_key=os.environ.get("FEISHU_ENCRYPT_KEY") or None,
    )
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
