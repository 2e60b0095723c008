"""The one rule for a point in time given as text: unix seconds or ISO 8601 with an offset.

Used by the meetings file's time columns and meant for any later option that takes a
time (such as ``--since``/``--until``), so that every place reads times alike.

Unix seconds are ASCII digits only: no sign (a time cannot be before 1970), no
underscores, exponents or decimals. ``str.isdigit``/``int``/``float`` are not used to
decide, because they accept superscript and full-width digits, ``"1_000"`` and
``"1e9"``, which a meeting number in the same file may not contain. An ISO 8601 time
must say its offset (``+08:00`` or ``Z``): a bare local time means a different instant
on every machine.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "MAX_UNIX_SECONDS",
    "TIME_RULE",
    "check_unix_seconds",
    "parse_unix_or_iso",
    "unix_from_datetime",
]

TIME_RULE = (
    "must be unix seconds (ASCII digits 0-9, no sign) or ISO 8601 with an offset "
    "(e.g. 2024-05-01T09:00:00+08:00 or 2024-05-01T01:00:00Z)"
)
# datetime's range ends in year 9999; a later time cannot be shown or typed anywhere.
MAX_UNIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

_UNIX = re.compile(r"[0-9]+", re.ASCII)
# Shapes that are close to unix seconds but break the rule, named so the message helps.
_SIGNED = re.compile(r"[+-]+[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[0-9]*\.[0-9]+|[0-9]+\.", re.ASCII)


def parse_unix_or_iso(text: str) -> int:
    """``"1714525200"`` or ``"2024-05-01T09:00:00+08:00"`` → unix seconds.

    Surrounding whitespace is ignored. Raises ``ValueError`` whose message names the
    rule that ``text`` breaks (and never any other exception, whatever ``text`` is).
    """
    stripped = text.strip()
    if not stripped.isascii():
        raise ValueError(TIME_RULE)
    if _UNIX.fullmatch(stripped):
        return _unix_from_digits(stripped)
    if _SIGNED.fullmatch(stripped):
        raise ValueError(f"unix seconds take no sign (a time cannot be before 1970); {TIME_RULE}")
    if _DECIMAL.fullmatch(stripped):
        raise ValueError("must be whole unix seconds (no decimals)")
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(TIME_RULE) from None
    if parsed.tzinfo is None:
        raise ValueError("an ISO 8601 time needs an offset such as +08:00 or Z")
    return unix_from_datetime(parsed)


def unix_from_datetime(value: datetime) -> int:
    """An aware ``datetime`` → unix seconds; ``ValueError`` unless whole and 1970..9999.

    Exact (``timedelta`` arithmetic, not the float of ``timestamp()``), so a fraction of a
    second is refused rather than silently cut off.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("an ISO 8601 time needs an offset such as +08:00 or Z")
    seconds, rest = divmod(value - _EPOCH, _SECOND)
    if rest:
        raise ValueError("must be whole seconds (no fraction of a second)")
    return check_unix_seconds(seconds)


def check_unix_seconds(seconds: int) -> int:
    """``seconds`` if it is a time from 1970 to 9999, else ``ValueError``."""
    if seconds < 0:
        raise ValueError("cannot be before 1970-01-01T00:00:00Z (unix seconds are not negative)")
    if seconds > MAX_UNIX_SECONDS:
        raise ValueError(f"cannot be after 9999-12-31T23:59:59Z ({MAX_UNIX_SECONDS})")
    return seconds


def _unix_from_digits(digits: str) -> int:
    # Checked by length first: int() refuses more than 4300 digits with its own error.
    significant = digits.lstrip("0")
    if len(significant) > len(str(MAX_UNIX_SECONDS)):
        raise ValueError(f"cannot be after 9999-12-31T23:59:59Z ({MAX_UNIX_SECONDS})")
    return check_unix_seconds(int(significant or "0"))
