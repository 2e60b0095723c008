"""The checks every entry point shares: counts, seconds, shares and base URLs.

The client, the fan-out, the limiters, the emulator and the CLI all call these, so a
value is judged by one rule wherever it comes in. Each raises ``ValueError`` naming the
argument, the value and the rule; the CLI passes its option name (``--concurrency``)
and turns the error into its own configuration error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from yarl import URL

from ._constants import FEISHU_ACCOUNTS_URL, FEISHU_BASE_URL, LARK_ACCOUNTS_URL, LARK_BASE_URL

__all__ = [
    "ACCOUNTS_URL_PRESETS",
    "BASE_URL_PRESETS",
    "base_url",
    "int_between",
    "non_empty",
    "non_negative_int",
    "non_negative_seconds",
    "port",
    "positive_int",
    "positive_seconds",
    "share",
]

BASE_URL_PRESETS: Final = {"feishu": FEISHU_BASE_URL, "lark": LARK_BASE_URL}
# The OAuth authorize page lives on another host than the API.
ACCOUNTS_URL_PRESETS: Final = {"feishu": FEISHU_ACCOUNTS_URL, "lark": LARK_ACCOUNTS_URL}


def non_empty(name: str, value: object) -> str:
    """A string with something besides whitespace (an id, a key, a secret: never echoed)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must be a non-empty string")
    return value


def positive_int(name: str, value: object) -> int:
    """An integer of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: must be an integer of at least 1")
    return value


def non_negative_int(name: str, value: object) -> int:
    """An integer of at least 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r}: must be an integer of at least 0")
    return value


def int_between(name: str, value: object, low: int, high: int) -> int:
    """An integer from ``low`` to ``high``, both included."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}={value!r}: must be an integer from {low} to {high}")
    return value


def port(name: str, value: object) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535 (a larger one overflows the
    socket call instead of being refused)."""
    return int_between(name, value, 0, 65535)


# NaN fails every comparison below, so it is refused with the rest.


def positive_seconds(name: str, value: object) -> float:
    """A finite number of seconds above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name}={value!r}: must be a number of seconds above 0")
    return float(value)


def non_negative_seconds(name: str, value: object) -> float:
    """A finite number of seconds, 0 allowed."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{name}={value!r}: must be a number of seconds, 0 or more")
    return float(value)


def share(name: str, value: object) -> float:
    """A fraction from 0 to 1 (a probability, a rate of faults)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name}={value!r}: must be a number from 0 to 1")
    return float(value)


def base_url(
    value: object, name: str = "base_url", presets: Mapping[str, str] = BASE_URL_PRESETS
) -> str:
    """``"feishu"`` / ``"lark"`` (a key of ``presets``), or an http(s) URL with a host (a
    proxy, an emulator), without credentials, query or fragment; returned without a
    trailing slash."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"{name}: must be a URL string such as {presets['feishu']!r}, got {value!r}"
        )
    text = value.strip()
    text = presets.get(text.lower(), text).rstrip("/")
    try:
        url = URL(text)
    except ValueError as exc:
        raise ValueError(f"{name}={text!r}: not a URL ({exc})") from None
    if url.user is not None or url.password is not None:
        # The value itself is not repeated: it holds a password.
        raise ValueError(f"{name}: must not carry credentials (user:password@)")
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{name}={text!r}: must be an http:// or https:// URL with a host")
    if url.query_string or url.fragment:
        raise ValueError(f"{name}={text!r}: must not have a query string or fragment")
    return text
