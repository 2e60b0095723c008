"""Decode of one participant_list page: ours (msgspec into typed structs) against the
official SDK's decode and plain ``json.loads``.

The SDK's ``aget`` does exactly ``JSON.unmarshal(str(resp.content, UTF_8),
GetParticipantListResponse)``: a ``json.loads`` and a reflective walk that builds one
object per row. We time that same call on the same bytes. Ours is
``PARTICIPANT_LIST_DECODER.decode(bytes)``; the "+ views" figure also materializes every
typed time view of every row (``joined_at``, ``left_at``, ``duration``, ``acceptance``),
work the SDK never does (its times stay strings): what an export or a web backend that
reads the times pays, with its own goal.
"""

from __future__ import annotations

import json

from feishu_vc_async.models import PARTICIPANT_LIST_DECODER

from ._data import realistic_page_bodies
from ._harness import BenchResult, Config, scale_stat, time_per_call

NAME = "decode"
TITLE = "1. Decode of one page"
GOAL = 10.0
GOAL_TEXT = ">= 10x the SDK"
VIEWS_GOAL = 5.0
VIEWS_GOAL_TEXT = ">= 5x the SDK"


def run(cfg: Config) -> BenchResult:
    from lark_oapi.api.vc.v1 import GetParticipantListResponse
    from lark_oapi.core import JSON
    from lark_oapi.core.const import UTF_8

    res = BenchResult(NAME, TITLE)
    sizes = [20, 100]
    bodies, source = realistic_page_bodies(sizes)
    res.params = {
        "page_sizes": sizes,
        "body_bytes": {n: len(b) for n, b in bodies.items()},
        "repeats": cfg.pick(9, 1),
    }
    for n, body in bodies.items():
        # Same answer from every decoder, or the comparison means nothing.
        ours = PARTICIPANT_LIST_DECODER.decode(body)
        sdk = JSON.unmarshal(str(body, UTF_8), GetParticipantListResponse)
        assert ours.data is not None
        assert sdk.data is not None
        assert len(ours.data.participants) == len(sdk.data.participants) == n
        assert ours.data.participants[-1].join_time == sdk.data.participants[-1].join_time

        def decode_typed(body: bytes = body) -> object:
            return PARTICIPANT_LIST_DECODER.decode(body)

        def decode_views(body: bytes = body) -> object:
            resp = PARTICIPANT_LIST_DECODER.decode(body)
            assert resp.data is not None
            for p in resp.data.participants:
                _ = (p.joined_at, p.left_at, p.duration, p.acceptance)
            return resp

        def decode_sdk(body: bytes = body) -> object:
            return JSON.unmarshal(str(body, UTF_8), GetParticipantListResponse)

        def decode_json(body: bytes = body) -> object:
            return json.loads(body)

        sides = (
            ("ours_typed", "ours: typed decode (msgspec)", decode_typed),
            ("ours_views", "ours: typed decode + all time views", decode_views),
            ("sdk", "lark-oapi: JSON.unmarshal", decode_sdk),
            ("json_loads", "plain json.loads (dicts, untyped)", decode_json),
        )
        # Nine short repeats rather than five long ones: a median that a passing
        # disturbance of the (virtual) machine moves less.
        stats = time_per_call(
            {key: fn for key, _, fn in sides}, cfg, target_s=0.12, repeats=cfg.pick(9, 1)
        )
        for key, label, _ in sides:
            res.add(f"p{n}.{key}", f"{n} participants — {label}", scale_stat(stats[key], 1e6, "µs"))
        res.ratio(
            f"p{n}.typed_vs_sdk",
            f"Decode {n}-participant page: ours typed vs SDK",
            f"p{n}.ours_typed",
            f"p{n}.sdk",
            headline=n == 100,
            goal=GOAL,
            goal_text=GOAL_TEXT,
        )
        res.ratio(
            f"p{n}.views_vs_sdk",
            f"Decode {n}-participant page: ours typed + all time views vs SDK",
            f"p{n}.ours_views",
            f"p{n}.sdk",
            headline=n == 100,
            goal=VIEWS_GOAL,
            goal_text=VIEWS_GOAL_TEXT,
        )
        res.ratio(
            f"p{n}.typed_vs_json",
            f"Decode {n}-participant page: ours typed vs plain json.loads",
            f"p{n}.ours_typed",
            f"p{n}.json_loads",
        )
    res.notes.append(f"Page bodies: {source}; times are per page, GC on.")
    return res
