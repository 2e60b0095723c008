"""The official lark-oapi long-connection client, run as its own process (its module
captures an event loop at import and ``start()`` blocks in ``run_until_complete``):
``python tests/_official_ws_listener.py BASE_URL APP_ID`` with the app secret on stdin
(never on a command line). It registers a handler for ``vc.meeting.all_meeting_ended_v1``
and prints ``EVENT <event_id> <meeting_no>`` for each event it is given, flushed, on
stdout; the SDK's own log goes to stderr. ``tests/test_long_connection_official.py``
runs it against the emulator."""

from __future__ import annotations

import logging
import sys

import lark_oapi as lark
from lark_oapi.api.vc.v1 import P2VcMeetingAllMeetingEndedV1


def _ended(data: P2VcMeetingAllMeetingEndedV1) -> None:
    meeting = data.event.meeting if data.event is not None else None
    number = meeting.meeting_no if meeting is not None else "-"
    print(f"EVENT {data.header.event_id} {number}", flush=True)


def main() -> None:
    base_url, app_id = sys.argv[1], sys.argv[2]
    app_secret = sys.stdin.readline().strip()
    # The SDK logs to a handler of its own; keep stdout for the events.
    for handler in logging.getLogger("Lark").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    handler = (
        lark.EventDispatcherHandler.builder("", "")
        .register_p2_vc_meeting_all_meeting_ended_v1(_ended)
        .build()
    )
    client = lark.ws.Client(
        app_id, app_secret, event_handler=handler, domain=base_url, log_level=lark.LogLevel.DEBUG
    )
    print("STARTING", flush=True)
    client.start()


if __name__ == "__main__":
    main()
