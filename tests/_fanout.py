"""A client for fan-out tests against the emulator: app credentials, an optional limit,
and retries fast enough that injected faults cost milliseconds, not seconds."""

from __future__ import annotations

from feishu_vc_async import AppCredentials, Limits, Retries
from feishu_vc_async._retry import DefaultRetryPolicy
from feishu_vc_async.client import VCClient
from feishu_vc_async.emulator import Emulator
from feishu_vc_async.ratelimit import RateLimit

__all__ = ["FAST_RETRIES", "make_client"]

FAST_RETRIES = DefaultRetryPolicy(initial=0.005, max_backoff=0.02)


def make_client(emu: Emulator, rate_limit: RateLimit | None = None) -> VCClient:
    return VCClient(
        AppCredentials(emu.app_id, emu.app_secret),
        base_url=emu.base_url,
        limits=Limits(participant_list=rate_limit),
        retries=Retries(policy=FAST_RETRIES),
    )
