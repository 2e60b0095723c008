"""What the webhook receiver answers: :class:`WebhookAnswer`, and refusals logged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from .._constants import LOGGER_NAME

__all__ = ["Answering", "WebhookAnswer", "accepted", "json_answer", "refusal"]

log = logging.getLogger(LOGGER_NAME + ".events")

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What to answer a push: ``status``, a JSON ``body``, and ``reason`` (for logs)."""

    status: int
    body: bytes
    reason: str


class Answering(Protocol):
    """What the HTTP adapters serve: a receiver's cap and its answers."""

    max_body: int

    async def answer(self, headers: Mapping[str, str], body: bytes) -> WebhookAnswer: ...


def json_answer(status: int, body: dict[str, Any], reason: str) -> WebhookAnswer:
    return WebhookAnswer(status, _ENCODER.encode(body), reason)


def refusal(status: int, reason: str) -> WebhookAnswer:
    """The answer refusing a push, logged as one line (``reason`` must hold no secret)."""
    log.warning("webhook push refused, HTTP %d: %s", status, reason)
    return json_answer(status, {"code": status, "msg": reason}, reason)


def accepted(reason: str) -> WebhookAnswer:
    """200 ``{"code": 0}``: the push is taken (or ignored on purpose)."""
    return json_answer(200, {"code": 0, "msg": "success"}, reason)
