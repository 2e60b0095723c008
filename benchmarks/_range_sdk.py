"""A date-range export with the official SDK (lark-oapi), written the way its users do.

    FEISHU_APP_ID=... FEISHU_APP_SECRET=... python -m benchmarks._range_sdk \\
        --base-url URL --since UNIX --until UNIX --out FILE.jsonl \\
        --rate 100/2s --meeting-list-rate 100/2s [--include-webinars]

The SDK has no paginator, no limiter and no fan-out, so a user writes two paced loops:
first every page of ``client.vc.v1.meeting_list.aget`` (the meetings and their exact
times, read from the ``2025.12.23 11:16:59 (GMT+08:00)`` strings it returns), then every
page of ``client.vc.v1.participant_list.aget`` for each meeting in turn. Each API is
paced start to start at its limit's interval (``period / requests``: the careful way;
sleeping that long *after* each call is slower still), and a 429 is answered the way
the platform advises: sleep ``x-ogw-ratelimit-reset`` seconds and ask again. Rows go to
a JSONL file, one per participant, led by the meeting's number and exact times.

This process imports only the SDK (not this project), so its start-up is the SDK's own.
It prints one JSON line: the meetings listed, rows written, requests and 429s per API,
the errors it skipped and the CPU seconds it used (in all, and after the first answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

RATE_LIMITED_CODE = 99991400
RESET_HEADER = "x-ogw-ratelimit-reset"
_FEISHU_TIME = re.compile(r"(\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d) \(GMT([+-])(\d\d):(\d\d)\)")


def parse_rate(text: str) -> float:
    """``100/2s`` → the interval between requests, 0.02 s."""
    count, _, period = text.partition("/")
    return float(period.rstrip("s")) / int(count)


def unix_seconds(text: str) -> int:
    """``2025.12.23 11:16:59 (GMT+08:00)`` → unix seconds."""
    match = _FEISHU_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Feishu time: {text!r}")
    stamp, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    zone = timezone(offset if sign == "+" else -offset)
    return int(datetime.strptime(stamp, "%Y.%m.%d %H:%M:%S").replace(tzinfo=zone).timestamp())


class Pacer:
    """At most one request per ``interval``, start to start."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next_slot = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self.next_slot > now:
            await asyncio.sleep(self.next_slot - now)
        self.next_slot = max(self.next_slot, time.monotonic()) + self.interval


class Export:
    def __init__(self, args: argparse.Namespace) -> None:
        import lark_oapi as lark

        logging.getLogger("Lark").setLevel(logging.ERROR)
        self.client = (
            lark.Client.builder()
            .app_id(os.environ["FEISHU_APP_ID"])
            .app_secret(os.environ["FEISHU_APP_SECRET"])
            .domain(args.base_url)
            .log_level(lark.LogLevel.ERROR)
            .build()
        )
        self.args = args
        self.pacers = {
            "meeting_list": Pacer(parse_rate(args.meeting_list_rate)),
            "participant_list": Pacer(parse_rate(args.rate)),
        }
        self.requests = {"meeting_list": 0, "participant_list": 0}
        self.rate_limited = {"meeting_list": 0, "participant_list": 0}
        self.errors: list[str] = []
        self.rows = 0
        self.cpu_at_first: float | None = None  # after the first answer: imports, token done

    async def call(self, api: str, request: Any) -> Any:
        """One request, paced; a 429 sleeps the reset and asks again."""
        endpoint = getattr(self.client.vc.v1, api)
        while True:
            await self.pacers[api].wait()
            response = await endpoint.aget(request)
            self.requests[api] += 1
            if self.cpu_at_first is None:
                self.cpu_at_first = time.process_time()
            if response.code != RATE_LIMITED_CODE:
                return response
            self.rate_limited[api] += 1
            headers = response.raw.headers or {}
            reset = headers.get(RESET_HEADER) or headers.get(RESET_HEADER.title()) or "1"
            await asyncio.sleep(float(reset))

    async def meetings(self) -> list[Any]:
        from lark_oapi.api.vc.v1 import GetMeetingListRequest

        found: list[Any] = []
        token: str | None = None
        while True:
            builder = (
                GetMeetingListRequest.builder()
                .start_time(self.args.since)
                .end_time(self.args.until)
                .meeting_status(2)
                .page_size(100)
                .include_webinar(self.args.include_webinars)
            )
            if token:
                builder = builder.page_token(token)
            response = await self.call("meeting_list", builder.build())
            if not response.success():
                raise SystemExit(f"meeting_list failed: {response.code} {response.msg}")
            found += response.data.meeting_list or []
            if not response.data.has_more or not response.data.page_token:
                return found
            token = response.data.page_token

    async def participants(self, meeting: Any, out: Any) -> None:
        from lark_oapi.api.vc.v1 import GetParticipantListRequest

        start = unix_seconds(meeting.meeting_start_time)
        end = unix_seconds(meeting.meeting_end_time)
        head = {"meeting_no": meeting.meeting_id, "meeting_start_time": start}
        head["meeting_end_time"] = end
        token: str | None = None
        while True:
            builder = (
                GetParticipantListRequest.builder()
                .meeting_start_time(str(start))
                .meeting_end_time(str(end))
                .meeting_no(meeting.meeting_id)
                .page_size(100)
            )
            if token:
                builder = builder.page_token(token)
            response = await self.call("participant_list", builder.build())
            if not response.success():
                self.errors.append(f"{meeting.meeting_id}@{start}: {response.code}")
                return
            for p in response.data.participants or []:
                row = head | {k: v for k, v in vars(p).items() if v is not None}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.rows += 1
            if not response.data.has_more or not response.data.page_token:
                return
            token = response.data.page_token

    async def run(self) -> dict[str, Any]:
        meetings = await self.meetings()
        with open(self.args.out, "w", encoding="utf-8") as out:
            for meeting in meetings:
                await self.participants(meeting, out)
        return {
            "meetings": len(meetings),
            "rows": self.rows,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "cpu_s": time.process_time(),  # the whole process: imports, token, the loop
            # From the first answer on: the loop's own cost of the other requests.
            "loop_cpu_s": time.process_time() - (self.cpu_at_first or 0.0),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--since", type=int, required=True)
    parser.add_argument("--until", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--rate", required=True, help="participant_list's limit, 100/2s")
    parser.add_argument("--meeting-list-rate", required=True, help="meeting_list's limit")
    parser.add_argument("--include-webinars", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(Export(args).run())), flush=True)


if __name__ == "__main__":
    main()
